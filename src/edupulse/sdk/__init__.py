"""The EduPulse Python client (docs/sdk.md): `from edupulse.sdk import EduPulse`."""

from edupulse.sdk.client import EduPulse, Stats

__all__ = ["EduPulse", "Stats"]
