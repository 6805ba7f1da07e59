"""The simulator: a realistic education organization, written through the ingestion write path,
with the ground truth it planted.

    from edupulse.sim import SimulationConfig, simulate
    summary = simulate(platform, project, SimulationConfig(seed=7, learners=2000))

The runner (and with it the event store) is imported on first use, so `edupulse --help` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edupulse.sim.config import SimulationConfig, SimulationError, SimulationSummary

if TYPE_CHECKING:
    from edupulse.sim.runner import World, generate, simulate

__all__ = ["SimulationConfig", "SimulationError", "SimulationSummary", "World", "generate", "simulate"]


def __getattr__(name: str) -> Any:
    if name in ("World", "generate", "simulate"):
        from edupulse.sim import runner

        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
