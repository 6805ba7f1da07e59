"""Every problem the Scenarios page shows, by stage, and the packs that answer them: an explicit list (a new
pack is one entry here and its module), not packs registering themselves on import."""

from __future__ import annotations

from dataclasses import dataclass

from edupulse.packs import (
    automated_sops,
    b2b_health,
    channel_quality,
    front_back_join,
    lead_tiering,
    learning_indicators,
    one_person,
    realtime_board,
    referral,
    renewal,
    school_accounts,
    supervision,
)
from edupulse.packs.spec import Pack, Stage


@dataclass(frozen=True)
class Problem:
    """A card of the Scenarios page: `pack` is None until the pack is built; `waits_for` names the parts of
    EduPulse it needs that are not there yet (tags, journeys)."""

    name: str  # the pack's name, for URLs and the CLI
    stage: Stage
    number: str
    pack: Pack | None = None
    waits_for: tuple[str, ...] = ()


PROBLEMS: tuple[Problem, ...] = (
    Problem("channel_quality", Stage.acquisition, "1", channel_quality.PACK),
    Problem("front_back_join", Stage.acquisition, "2", front_back_join.PACK),
    Problem("realtime_board", Stage.acquisition, "3", realtime_board.PACK),
    Problem("one_person", Stage.conversion, "4", one_person.PACK),
    Problem("lead_tiering", Stage.conversion, "5", lead_tiering.PACK),
    Problem("automated_sops", Stage.conversion, "6", automated_sops.PACK),
    Problem("learning_indicators", Stage.learning, "7", learning_indicators.PACK),
    Problem("supervision", Stage.learning, "8", supervision.PACK),
    Problem("renewal", Stage.repurchase, "9", renewal.PACK),
    Problem("referral", Stage.repurchase, "10", referral.PACK),
    Problem("b2b_health", Stage.beyond, "b2b", b2b_health.PACK),
    Problem("school_accounts", Stage.beyond, "schools", school_accounts.PACK),
)
STAGES = tuple(Stage)
PACKS: dict[str, Pack] = {p.name: p.pack for p in PROBLEMS if p.pack is not None}


def problem(name: str) -> Problem | None:
    return next((p for p in PROBLEMS if p.name == name), None)
