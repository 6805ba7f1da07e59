"""The tags every project has from the start: built on the standard events of PRODUCT.md only, so they work on
any organization's data, computed by the scheduler and on demand like any other tag."""

from __future__ import annotations

from typing import Any

DEFAULTS: list[dict[str, Any]] = [
    {"name": "missed_3_in_a_row", "value_type": "string", "owner": "EduPulse",
     "description": "Students who missed 3 scheduled lessons of one class in a row (the value is the class)",
     "definition": {"type": "missed_streak", "streak": 3}},
    {"name": "referral_kol", "value_type": "string", "owner": "EduPulse",
     "description": "Referrers by referees brought; the 10 first are kol",
     "definition": {"type": "referral_kol", "top": 10}},
    {"name": "rfm", "value_type": "string", "owner": "EduPulse",
     "description": "RFM segments of paying persons (order_paid and its amount)",
     "definition": {"type": "rfm"}},
    {"name": "institution_health", "unit": "institution", "value_type": "string", "owner": "EduPulse",
     "description": "B2B health: staff logins in 7 and 30 days and enrolment growth; warning below 50",
     "definition": {"type": "institution_health"}},
    {"name": "lead_propensity", "value_type": "string", "owner": "EduPulse",
     "description": "Chance that a lead pays a first order within 30 days, from their first days",
     "definition": {"type": "model", "model": "lead_propensity"}},
    {"name": "dropout_risk", "value_type": "string", "owner": "EduPulse",
     "description": "Chance that a student stops attending, from attendance, completion, homework and quizzes",
     "definition": {"type": "model", "model": "dropout_risk"}},
    {"name": "renewal_propensity", "value_type": "string", "owner": "EduPulse",
     "description": "Chance that a student renews when the course ends, from its learning record",
     "definition": {"type": "model", "model": "renewal_propensity"}},
]
