"""School accounts (B2B/B2G): schools of three sizes whose teachers and parents adopt the product unevenly.

Tiers by size follow PRODUCT.md: A > 2000 students, B 1000-2000, C < 1000. Adoption depends on the
relationship with the school more than on its size, so a big school can still be a weak account.
"""

from __future__ import annotations

import random
from typing import Any

from edupulse.sim.catalog import CITIES, DISTRICTS, PARENT_PATHS, SCHOOL_KINDS, TEACHER_PATHS
from edupulse.sim.clock import Clock
from edupulse.sim.emit import LOGIN, Emitter
from edupulse.sim.rand import Weighted, poisson

TIER_SIZES = {"A": (2001, 3600), "B": (1000, 2000), "C": (300, 999)}
_INFLUENCE = {"A": ("provincial_key", "district_key"), "B": ("district_key", "ordinary"), "C": ("ordinary",)}
# planted adoption ranges by relationship: (parents low, high), (teachers low, high)
ADOPTION = {
    "strategic": ((0.45, 0.65), (0.75, 0.95)),
    "partner": ((0.25, 0.45), (0.5, 0.75)),
    "new": ((0.05, 0.2), (0.2, 0.45)),
}
_APP_HOURS = Weighted([7.0, 12.0, 17.0, 19.0, 20.0, 21.0], [2, 1, 2, 4, 4, 2])


def school_count(learners: int) -> int:
    return max(3, learners // 800)


def emit_schools(count: int, clock: Clock, em: Emitter, rng: random.Random) -> tuple[list[dict[str, Any]], int]:
    """Emit every school with its active teachers and parents; returns the truth and the persons who appeared."""
    tier_pick = Weighted(["A", "B", "C"], [0.25, 0.35, 0.4])
    relation_pick = Weighted(list(ADOPTION), [0.3, 0.4, 0.3])
    facts, persons = [], 0
    for k in range(count):
        tier = "ABC"[k] if k < 3 else tier_pick.pick(rng)
        fact = _school(k, tier, relation_pick.pick(rng), clock, em, rng)
        facts.append(fact)
        persons += fact["active_parents"] + fact["active_teachers"]
    return facts, persons


def _school(k: int, tier: str, relationship: str, clock: Clock, em: Emitter, rng: random.Random) -> dict[str, Any]:
    school_id = f"sch-{k + 1:03d}"
    city = CITIES[rng.randrange(len(CITIES))][0]
    district = DISTRICTS[rng.randrange(len(DISTRICTS))]
    kind = SCHOOL_KINDS[k % len(SCHOOL_KINDS)]
    name = f"{city}{district}{kind}" + (f"{k // len(SCHOOL_KINDS) + 1}" if k >= len(SCHOOL_KINDS) else "")
    students = rng.randint(*TIER_SIZES[tier])
    teachers = max(20, students // rng.randint(12, 16))
    influence = _INFLUENCE[tier][rng.randrange(len(_INFLUENCE[tier]))]
    (plo, phi), (tlo, thi) = ADOPTION[relationship]
    parent_adoption = round(plo + (phi - plo) * rng.random(), 3)
    teacher_adoption = round(tlo + (thi - tlo) * rng.random(), 3)
    em.group("school", school_id, clock.start_ms, {
        "name": name, "city": city, "district": district, "students": students, "teachers": teachers,
        "tier": tier, "influence": influence, "relationship": relationship,
    })
    active_parents = round(students * parent_adoption)
    active_teachers = round(teachers * teacher_adoption)
    for j in range(active_parents):
        _member(f"{school_id}-p{j + 1:04d}", "parent", school_id, 2.0, PARENT_PATHS, clock, em, rng,
                {"child_grade": rng.randint(1, 9)})
    for j in range(active_teachers):
        _member(f"{school_id}-t{j + 1:03d}", "teacher", school_id, 7.0, TEACHER_PATHS, clock, em, rng,
                {"subject": ("chinese", "math", "english", "science")[rng.randrange(4)]})
    return {
        "school_id": school_id,
        "name": name,
        "tier": tier,
        "students": students,
        "teachers": teachers,
        "influence": influence,
        "relationship": relationship,
        "planted_parent_adoption": parent_adoption,
        "planted_teacher_adoption": teacher_adoption,
        "active_parents": active_parents,
        "active_teachers": active_teachers,
        "parent_adoption": round(active_parents / students, 3),
        "teacher_adoption": round(active_teachers / teachers, 3),
    }


def _member(
    login: str, role: str, school_id: str, mean_visits: float, paths: tuple[str, ...], clock: Clock, em: Emitter,
    rng: random.Random, profile: dict[str, Any],
) -> None:
    """One active teacher or parent: a profile, then visits to the school app spread over the period."""
    days = clock.days
    first = rng.randrange(days)
    groups = {"school": school_id}
    t = clock.at(first, _APP_HOURS.pick(rng) + rng.random())
    em.profile("profile_set", LOGIN, login, t, {"role": role, "school_id": school_id, **profile})
    visits = [t] + [
        clock.at(first + rng.randrange(days - first), _APP_HOURS.pick(rng) + rng.random())
        for _ in range(poisson(rng, mean_visits))
    ]
    for at in visits:
        em.track("page_view", LOGIN, login, at, {
            "url": "app://school" + paths[rng.randrange(len(paths))], "platform": "school_app",
            "role": role, "school_id": school_id,
        }, groups)
