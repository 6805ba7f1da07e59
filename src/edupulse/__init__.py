"""EduPulse: data-driven operations platform for education organizations."""

__version__ = "0.1.0"
