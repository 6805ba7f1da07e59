"""The ground truth a simulation planted, as one JSON document keyed by identities queries can see.

People are named by `crm_lead_id` and `mobile` (every learner), `login_id` (learners who signed up
in the app, staff, teachers, parents); classes, institutions and schools by their group keys.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from edupulse.sim.catalog import CHANNELS, COURSES
from edupulse.sim.emit import Emitter
from edupulse.sim.leads import HIGH_INTENT, Lead
from edupulse.sim.learning import CHURN_INACTIVE_DAYS, RISK_STREAK, LearningFacts, who
from edupulse.sim.orders import OrderBook

FORMAT = "edupulse-simulation-truth/1"
TOP_REFERRERS = 10
RENEWAL_WINDOW_DAYS = (7, 30)  # a renewal counts for a course end from 7 days before to 30 days after it
RENEWAL_SETTLE_DAYS = 14  # a course end is known once the 14 days after its last lesson's day are over
DAY_MS = 86_400_000


@dataclass
class WorldParts:
    """Everything the truth is assembled from."""

    config: dict[str, Any]
    emitter: Emitter
    leads: list[Lead]
    advisor_skills: list[float]
    visitors: int
    book: OrderBook
    learning: LearningFacts
    teacher_factors: dict[str, float]
    classes: int
    spend: list[tuple[dt.date, str, str, float, int, int]]
    institutions: list[dict[str, Any]]
    staff_persons: int
    schools: list[dict[str, Any]]
    school_persons: int

    @property
    def persons(self) -> int:
        return len(self.leads) + self.visitors + self.staff_persons + self.school_persons


def build_truth(w: WorldParts) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "config": w.config,
        "summary": _summary(w),
        "channels": _channels(w),
        "lead_intent": _intent(w),
        "advisors": [{"advisor_id": f"adv-{i + 1:03d}", "skill": round(s, 3)} for i, s in enumerate(w.advisor_skills)],
        "learning": _learning(w),
        "renewal": _renewal(w),
        "referrals": _referrals(w),
        "institutions": w.institutions,
        "schools": w.schools,
    }


def write_truth(truth: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(truth, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)


def _summary(w: WorldParts) -> dict[str, Any]:
    leads = w.leads
    book = w.book
    return {
        "events": w.emitter.events,
        "records": w.emitter.records,
        "events_by_name": dict(sorted(w.emitter.events_by_name.items())),
        "persons": w.persons,
        "persons_by_kind": {
            "learners": len(leads),
            "anonymous_visitors": w.visitors,
            "institution_staff": w.staff_persons,
            "school_teachers_and_parents": w.school_persons,
        },
        "leads": len(leads),
        "high_intent_leads": sum(1 for lead in leads if lead.high_intent),
        "signed_up": sum(1 for lead in leads if lead.signed_up),
        "paying_students": sum(1 for lead in leads if lead.paid),
        "orders": book.orders,
        "orders_by_type": dict(sorted(book.by_type.items())),
        "refunds": book.refunds,
        "revenue": round(book.revenue, 2),
        "refunded_amount": round(book.refunded, 2),
        "net_revenue": round(book.revenue - book.refunded, 2),
        "spend": round(sum(row[3] for row in w.spend), 2),
        "spend_rows": len(w.spend),
        "classes": w.classes,
        "enrolments": w.learning.enrolments,
        "course_completions": w.learning.course_completions,
        "institutions": len(w.institutions),
        "schools": len(w.schools),
    }


def _channels(w: WorldParts) -> list[dict[str, Any]]:
    spend: dict[str, float] = {}
    for row in w.spend:
        spend[row[1]] = spend.get(row[1], 0.0) + row[3]
    by_quality = sorted(CHANNELS, key=lambda c: -c.intent[0] / (c.intent[0] + c.intent[1]))
    out = []
    for index, spec in enumerate(CHANNELS):
        mine = [lead for lead in w.leads if lead.channel == index]
        cost = round(spend.get(spec.name, 0.0), 2)
        first = w.book.first_orders_by_channel.get(spec.name, 0)
        revenue = round(w.book.revenue_by_channel.get(spec.name, 0.0), 2)
        out.append({
            "channel": spec.name,
            "campaigns": list(spec.campaigns),
            "paid": spec.paid,
            "quality_rank": by_quality.index(spec) + 1,
            "planted_mean_intent": round(spec.intent[0] / (spec.intent[0] + spec.intent[1]), 3),
            "planted_cost_per_lead": spec.cost_per_lead,
            "leads": len(mine),
            "high_intent_leads": sum(1 for lead in mine if lead.high_intent),
            "high_intent_share": round(sum(1 for lead in mine if lead.high_intent) / len(mine), 3) if mine else None,
            "mean_intent": round(sum(lead.intent for lead in mine) / len(mine), 3) if mine else None,
            "first_orders": first,
            "first_order_rate": round(first / len(mine), 3) if mine else None,
            "revenue": revenue,
            "spend": cost,
            "cost_per_lead": round(cost / len(mine), 2) if mine and spec.paid else None,
            "cac": round(cost / first, 2) if first and spec.paid else None,
            "roi": round(revenue / cost, 3) if cost else None,
        })
    return out


def _intent(w: WorldParts) -> dict[str, Any]:
    return {
        "threshold": HIGH_INTENT,
        "high_intent": [
            {**who(lead), "channel": CHANNELS[lead.channel].name, "intent": round(lead.intent, 3),
             "first_order": lead.paid}
            for lead in w.leads if lead.high_intent
        ],
    }


def _learning(w: WorldParts) -> dict[str, Any]:
    facts = w.learning
    kp_subject = {kp.name: (c.subject, kp.difficulty) for c in COURSES for kp in c.knowledge_points}
    kps = []
    for name, (answers, correct) in sorted(facts.kp_answers.items(), key=lambda kv: -kp_subject[kv[0]][1]):
        subject, difficulty = kp_subject[name]
        kps.append({
            "knowledge_point": name, "subject": subject, "planted_difficulty": difficulty,
            "answers": answers, "correct": correct, "accuracy": round(correct / answers, 3) if answers else None,
        })
    return {
        "risk_streak": RISK_STREAK,
        "churn_inactive_days": CHURN_INACTIVE_DAYS,
        "enrolments": facts.enrolments,
        "scheduled_lessons": facts.scheduled,
        "attended_lessons": facts.attended,
        "attendance_rate": round(facts.attended / facts.scheduled, 3) if facts.scheduled else None,
        "course_completions": facts.course_completions,
        "patterns": dict(sorted(facts.patterns.items())),
        "knowledge_points": kps,
        "teachers": [{"teacher_id": t, "attendance_factor": f} for t, f in sorted(w.teacher_factors.items())],
        "at_risk": facts.at_risk,
        "churned": facts.churned,
    }


def _renewal(w: WorldParts) -> dict[str, Any]:
    """PRODUCT.md's renewal rate: students whose course ended in the period and who paid a renewal / those whose
    course ended. A student's course ends at the start of the last lesson they had in it (the course's last, or
    the last before they left after a refund); an end counts once the RENEWAL_SETTLE_DAYS whole local days after
    its day are over within the period (a course with a lesson in the last days may still be running), a
    refunded course does not end; a
    renewal is any renewal order of the student from RENEWAL_WINDOW_DAYS before to after the end. After the
    last level there is nothing to renew, and such students count as not renewing."""
    before, after = RENEWAL_WINDOW_DAYS
    # the period's end (a local midnight) and RENEWAL_SETTLE_DAYS whole local days before it: ends known by then
    period_end = dt.datetime.fromtimestamp(w.emitter.end_ms / 1000, ZoneInfo(w.config["timezone"]))
    settled = int((period_end - dt.timedelta(days=RENEWAL_SETTLE_DAYS)).timestamp() * 1000)
    ends = []
    for end in w.learning.course_ends:
        t = end["last_lesson_ms"]
        if end["refunded"] or not w.emitter.start_ms <= t < settled:
            continue
        renewed = any(t - before * DAY_MS <= r <= t + after * DAY_MS for r in w.book.renewals.get(end["idx"], []))
        ends.append({**{k: v for k, v in end.items() if k not in ("idx", "last_lesson_ms", "refunded")},
                     "renewed": renewed})
    renewed_count = sum(1 for e in ends if e["renewed"])
    return {
        "window_days": list(RENEWAL_WINDOW_DAYS),
        "settle_days": RENEWAL_SETTLE_DAYS,
        "ended_courses": len(ends),
        "renewed": renewed_count,
        "renewal_rate": round(renewed_count / len(ends), 3) if ends else None,
        "candidates": ends,
    }


def _referrals(w: WorldParts) -> dict[str, Any]:
    leads = w.leads
    tree = [0] * len(leads)
    # a referrer always arrived before the referee, so one backwards pass sums the trees
    for lead in reversed(leads):
        if lead.referrer >= 0:
            tree[lead.referrer] += 1 + tree[lead.idx]
    referrers = [lead for lead in leads if lead.referees]
    ranked = sorted(referrers, key=lambda r: (-len(r.referees), -tree[r.idx], r.idx))[:TOP_REFERRERS]
    new_paying = sum(1 for lead in leads if lead.paid)
    referred_paying = sum(1 for lead in leads if lead.paid and lead.referrer >= 0)
    return {
        "referred_leads": sum(1 for lead in leads if lead.referrer >= 0),
        "referrers": len(referrers),
        "referral_rate": round(referred_paying / new_paying, 3) if new_paying else None,
        "top_referrers": [
            {**who(r), "referees": len(r.referees), "paying_referees": sum(1 for i in r.referees if leads[i].paid),
             "tree_size": tree[r.idx], "planted_advocacy": round(r.advocacy, 3)}
            for r in ranked
        ],
        "edges": [
            {"referrer": who(leads[lead.referrer]), "referee": who(lead), "referee_paid": lead.paid}
            for lead in leads if lead.referrer >= 0
        ],
    }
