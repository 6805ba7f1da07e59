"""B2B: training institutions that use the organization's SaaS, some healthy, some declining.

Health shows in two signals (PRODUCT.md, health score): how many days a week the institution's
staff log in, and how enrolments grow. A declining institution's staff log in less and less from
some day on, and its enrolments fall with them.
"""

from __future__ import annotations

import random
from typing import Any

from edupulse.sim.catalog import CITIES, COURSES, INSTITUTION_BRANDS, SURNAMES
from edupulse.sim.clock import Clock
from edupulse.sim.emit import LOGIN, Emitter
from edupulse.sim.rand import poisson

HEALTHY, DECLINING = "healthy", "declining"
PLANS = ("basic", "pro", "enterprise")


def institution_count(learners: int) -> int:
    return max(4, learners // 500)


def emit_institutions(count: int, clock: Clock, em: Emitter, rng: random.Random) -> tuple[list[dict[str, Any]], int]:
    """Emit every institution; returns their ground truth and how many staff members appeared (persons)."""
    facts, persons = [], 0
    for k in range(count):
        health = HEALTHY if k == 0 else DECLINING if k == 1 else (HEALTHY if rng.random() < 0.6 else DECLINING)
        fact, staff_seen = _institution(k, health, clock, em, rng)
        facts.append(fact)
        persons += staff_seen
    return facts, persons


def _institution(
    k: int, health: str, clock: Clock, em: Emitter, rng: random.Random
) -> tuple[dict[str, Any], int]:
    days = clock.days
    inst_id = f"inst-{k + 1:03d}"
    city = CITIES[rng.randrange(len(CITIES))][0]
    brand = INSTITUTION_BRANDS[k % len(INSTITUTION_BRANDS)]
    name = f"{city}{brand}教育" + (f"{k // len(INSTITUTION_BRANDS) + 1}校" if k >= len(INSTITUTION_BRANDS) else "")
    staff = rng.randint(4, 20)
    em.group("institution", inst_id, clock.start_ms, {
        "name": name, "city": city, "plan": PLANS[rng.randrange(3)], "staff": staff,
        "signed_at": clock.date(0).replace(day=1).isoformat(),
    })
    decline_from = max(days // 3, days - rng.randint(21, 45)) if health == DECLINING else days
    activity = 0.7 + 0.2 * rng.random()
    habits = [0.6 + 0.4 * rng.random() for _ in range(staff)]
    enrol_rate = staff * (0.12 + 0.2 * rng.random())
    staff_ids = [f"{inst_id}-staff{j + 1:02d}" for j in range(staff)]
    seen: set[int] = set()
    login_days: list[set[int]] = [set() for _ in range(staff)]
    enrolments = [0] * days
    enrolled = 0
    groups = {"institution": inst_id}
    props = {"institution_id": inst_id}
    for day in range(days):
        weekend = 0.3 if clock.weekday(day) >= 5 else 1.0
        declining = day >= decline_from
        trend = max(0.1, 1.0 - (day - decline_from) / 28) if declining else 0.9 + 0.25 * day / days
        for j in range(staff):
            if rng.random() >= activity * habits[j] * weekend * trend:
                continue
            t = clock.at(day, 8.0 + 2.5 * rng.random())
            if j not in seen:
                seen.add(j)
                em.profile("profile_set", LOGIN, staff_ids[j], t, {
                    "name": SURNAMES[rng.randrange(len(SURNAMES))] + "老师", "role": "staff", "institution_id": inst_id,
                })
            em.track("staff_login", LOGIN, staff_ids[j], t, props, groups)
            login_days[j].add(day)
        growth = trend if declining else 0.8 + 0.6 * day / days
        for _ in range(poisson(rng, enrol_rate * weekend * growth)):
            enrolments[day] += 1
            enrolled += 1
            j = rng.randrange(staff)
            em.track("student_enrolled", LOGIN, staff_ids[j], clock.at(day, 9.0 + 9.0 * rng.random()), {
                "institution_id": inst_id,
                "student_id": f"{inst_id}-s{enrolled:05d}",
                "course_name": COURSES[rng.randrange(len(COURSES))].name,
            }, groups)
    return _fact(inst_id, name, health, decline_from, staff, login_days, enrolments, clock), len(seen)


def _fact(
    inst_id: str, name: str, health: str, decline_from: int, staff: int, login_days: list[set[int]],
    enrolments: list[int], clock: Clock,
) -> dict[str, Any]:
    days = clock.days

    def days_with_login(window: int) -> int:
        return len({d for person in login_days for d in person if d >= days - window})

    def staff_login_days(window: int) -> int:
        return sum(1 for person in login_days for d in person if d >= days - window)

    last30 = sum(enrolments[max(0, days - 30):])
    prev30 = sum(enrolments[max(0, days - 60): max(0, days - 30)])
    return {
        "institution_id": inst_id,
        "name": name,
        "health": health,
        "decline_started": clock.date(decline_from).isoformat() if health == DECLINING else None,
        "staff": staff,
        "login_days_7": days_with_login(7),
        "login_days_30": days_with_login(30),
        "staff_login_days_7": staff_login_days(7),
        "staff_login_days_30": staff_login_days(30),
        "active_staff_30": sum(1 for person in login_days if any(d >= days - 30 for d in person)),
        "enrolments_30": last30,
        "enrolments_prev_30": prev30,
        "enrolment_growth": round((last30 - prev30) / prev30, 3) if prev30 else None,
    }
