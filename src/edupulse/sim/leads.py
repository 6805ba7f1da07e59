"""The plan of every learner's way through the funnel, decided before anything is emitted.

Planning first lets referrals point at learners who really paid before their referee arrived, and
lets ad spend follow the leads each campaign really brought.
"""

from __future__ import annotations

import heapq
import math
import random
from bisect import bisect
from dataclasses import dataclass, field

from edupulse.sim.catalog import (
    CHANNELS,
    CITIES,
    COURSES,
    ENTRY_COURSES,
    GIVEN,
    HOUR_WEIGHTS,
    REFERRAL,
    SURNAMES,
)
from edupulse.sim.clock import DAY, HOUR, MINUTE, Clock
from edupulse.sim.rand import Weighted, derive_seed

HIGH_INTENT = 0.6
_MOBILE_PREFIXES = ("138", "139", "137", "135", "186", "188", "159", "158", "177", "133")
_SUBJECT_WEIGHT = {"english": 3.0, "math": 2.5, "coding": 2.0, "physics": 1.5, "writing": 1.0}


@dataclass(slots=True)
class Lead:
    """One learner: identities, profile, channel, latent intent, and the planned funnel (0 = never)."""

    idx: int
    crm_lead_id: str
    mobile: str
    anon_id: str
    login_id: str
    wechat_unionid: str
    name: str
    city: str
    grade: int
    channel: int
    campaign: str
    lead_ms: int
    day: int
    intent: float
    advisor: int
    course: int
    visitors: int
    referrer: int = -1
    referees: list[int] = field(default_factory=list)
    advocacy: float = 0.0
    assign_ms: int = 0
    calls: list[int] = field(default_factory=list)
    qualified_ms: int = 0
    wechat_ms: int = 0
    signup_ms: int = 0
    trial_booked_ms: int = 0
    trial_ms: int = 0
    trial_attended: bool = False
    order_ms: int = 0
    discount: float = 1.0
    refund_ms: int = 0
    # filled while emitting: what really happened before the end of the period
    signed_up: bool = False
    paid: bool = False
    orders: int = 0
    revenue: float = 0.0

    @property
    def high_intent(self) -> bool:
        return self.intent >= HIGH_INTENT


class IdentityValues:
    """Identity values that are unique by construction (bijections of the index), different per seed."""

    def __init__(self, seed: int) -> None:
        base = derive_seed(seed, "identities")
        mul = 10_000_019 + 2 * (base % 1_000_000)
        while math.gcd(mul, 10) != 1:
            mul += 2
        self._mobile_mul = mul
        self._mobile_off = base % 100_000_000
        self._hex_mul = (derive_seed(seed, "hex") | 1) & ((1 << 64) - 1)
        self._hex_off = derive_seed(seed, "hex-offset") & ((1 << 64) - 1)

    def mobile(self, i: int) -> str:
        return _MOBILE_PREFIXES[i % 10] + f"{(i * self._mobile_mul + self._mobile_off) % 100_000_000:08d}"

    def hex_id(self, i: int) -> str:
        return f"{((i + self._hex_off) * self._hex_mul) & ((1 << 64) - 1):016x}"


class ReferrerPool:
    """Paying learners eligible as referrers from a time on, drawn in proportion to their advocacy."""

    def __init__(self) -> None:
        self._pending: list[tuple[int, int]] = []  # (eligible from ms, lead index)
        self._eligible: list[int] = []
        self._cum: list[float] = []

    def add(self, from_ms: int, lead: Lead) -> None:
        heapq.heappush(self._pending, (from_ms, lead.idx))

    def pick(self, at_ms: int, leads: list[Lead], rng: random.Random, full_at: float) -> int:
        """A referrer, or -1: referrals grow with the customer base until its advocacy reaches `full_at`."""
        while self._pending and self._pending[0][0] <= at_ms:
            _, idx = heapq.heappop(self._pending)
            self._eligible.append(idx)
            self._cum.append((self._cum[-1] if self._cum else 0.0) + leads[idx].advocacy)
        if not self._eligible or rng.random() * full_at > self._cum[-1]:
            return -1
        return self._eligible[bisect(self._cum, rng.random() * self._cum[-1])]


def _lead_times(n: int, clock: Clock, rng: random.Random) -> list[int]:
    days = clock.days
    # more leads at weekends and a little more as the period goes on (the campaigns ramp up)
    day_pick = Weighted(range(days), [(1.35 if clock.weekday(d) >= 5 else 1.0) * (0.85 + 0.3 * d / days)
                                      for d in range(days)])
    hour_pick = Weighted(range(24), HOUR_WEIGHTS)
    # not in the first minutes: what happened just before a lead (the form, the referral sign-up) is in the period
    earliest = clock.start_ms + 10 * MINUTE
    return sorted(max(earliest, clock.at(day_pick.pick(rng), hour_pick.pick(rng) + rng.random())) for _ in range(n))


def plan_leads(n: int, seed: int, clock: Clock, rng: random.Random) -> tuple[list[Lead], list[float]]:
    """Plan `n` learners in lead-creation order; returns them and the advisors' skills."""
    ids = IdentityValues(seed)
    advisors = max(3, n // 250)
    skills = [0.75 + 0.5 * rng.random() for _ in range(advisors)]
    channel_pick = Weighted(range(len(CHANNELS)), [c.share for c in CHANNELS])
    city_pick = Weighted([c for c, _ in CITIES], [w for _, w in CITIES])
    course_pick = _course_picks()
    pool = ReferrerPool()
    # referral reaches its full share once there is this much advocacy among paying customers
    full_referrals = 20.0 + n / 40
    other_pick = Weighted([i for i, c in enumerate(CHANNELS) if c.name != REFERRAL],
                          [c.share for c in CHANNELS if c.name != REFERRAL])
    leads: list[Lead] = []
    for i, lead_ms in enumerate(_lead_times(n, clock, rng)):
        channel = channel_pick.pick(rng)
        referrer = -1
        if CHANNELS[channel].name == REFERRAL:
            referrer = pool.pick(lead_ms, leads, rng, full_referrals)
            if referrer < 0:  # too few customers yet to have referred this learner: another channel
                channel = other_pick.pick(rng)
        spec = CHANNELS[channel]
        grade = rng.randint(1, 9)
        lead = Lead(
            idx=i,
            crm_lead_id=f"L{100001 + i}",
            mobile=ids.mobile(i),
            anon_id=ids.hex_id(i),
            login_id=f"u{300001 + i}",
            wechat_unionid="oU" + ids.hex_id(i + (1 << 40)),
            name=SURNAMES[rng.randrange(len(SURNAMES))] + "".join(
                GIVEN[rng.randrange(len(GIVEN))] for _ in range(rng.randint(1, 2))),
            city=city_pick.pick(rng),
            grade=grade,
            channel=channel,
            campaign=spec.campaigns[rng.randrange(len(spec.campaigns))],
            lead_ms=lead_ms,
            day=clock.day_of(lead_ms),
            intent=rng.betavariate(*spec.intent),
            advisor=rng.randrange(advisors),
            course=course_pick[grade].pick(rng),
            visitors=0 if spec.name == "offline_event" else rng.randint(1, 5),
            referrer=referrer,
        )
        if referrer >= 0:
            leads[referrer].referees.append(i)
        _plan_funnel(lead, skills[lead.advisor], clock, rng)
        if lead.order_ms and not lead.refund_ms:
            # Advocacy is heavy-tailed: a few enthusiastic parents bring many referrals (the KOLs).
            lead.advocacy = min(rng.paretovariate(1.4), 40.0) * (0.5 + lead.intent)
            pool.add(lead.order_ms + 2 * DAY, lead)
        leads.append(lead)
    return leads, skills


def _course_picks() -> dict[int, Weighted[int]]:
    picks = {}
    for grade in range(1, 10):
        options = [i for i in ENTRY_COURSES if grade in COURSES[i].grades] or list(ENTRY_COURSES)
        picks[grade] = Weighted(options, [_SUBJECT_WEIGHT[COURSES[i].subject] for i in options])
    return picks


def _evening(ms: int, clock: Clock) -> int:
    """A trial-class slot on the day after `ms`: 19:00 on a weekday, 10:00 at the weekend."""
    day = clock.day_of(ms) + 1
    return clock.at(day, 10.0 if clock.weekday(day) >= 5 else 19.0)


def _plan_funnel(lead: Lead, skill: float, clock: Clock, rng: random.Random) -> None:
    """Each step's chance rises with the lead's intent (and the advisor's skill); times follow each other."""
    intent = lead.intent
    t = lead.lead_ms
    lead.assign_ms = t + rng.randint(3, 120) * MINUTE
    attempt_ms = lead.assign_ms
    for _ in range(3):
        attempt_ms += rng.randint(10, 24 * 60) * MINUTE
        if rng.random() < (0.3 + 0.45 * intent) * skill:
            lead.calls.append(attempt_ms)
    if lead.calls and rng.random() < 0.15 + 0.85 * intent**0.7:
        lead.qualified_ms = lead.calls[0] + rng.randint(5, 90) * MINUTE
    elif not lead.calls and rng.random() < 0.05:
        lead.qualified_ms = lead.assign_ms + rng.randint(1, 48) * HOUR
    if lead.calls and rng.random() < 0.2 + 0.6 * intent:
        lead.wechat_ms = lead.calls[0] + rng.randint(1, 30) * MINUTE
    if rng.random() < min(0.95, (0.04 + 0.8 * intent**1.3) * skill):
        lead.trial_booked_ms = (lead.calls[0] if lead.calls else lead.assign_ms) + rng.randint(30, 4 * 24 * 60) * MINUTE
        lead.trial_ms = _evening(lead.trial_booked_ms + rng.randint(0, 3) * DAY, clock)
        lead.trial_attended = rng.random() < 0.5 + 0.45 * intent
        lead.signup_ms = lead.trial_booked_ms + rng.randint(1, 60) * MINUTE
    elif rng.random() < 0.1 + 0.3 * intent:
        lead.signup_ms = t + rng.randint(10, 3 * 24 * 60) * MINUTE
    if lead.trial_attended:
        p_order = 0.18 + 0.7 * intent
        order_ms = lead.trial_ms + rng.randint(60, 6 * 24 * 60) * MINUTE
    elif lead.trial_booked_ms:
        p_order = 0.04 + 0.2 * intent
        order_ms = lead.trial_ms + rng.randint(1, 10 * 24 * 60) * MINUTE
    else:
        p_order = 0.01 + 0.12 * intent**2
        order_ms = t + rng.randint(6 * 60, 20 * 24 * 60) * MINUTE
    if rng.random() < min(0.95, p_order * skill):
        lead.order_ms = order_ms
        lead.discount = (1.0, 0.95, 0.9, 0.85)[rng.randrange(4)]
        if not lead.signup_ms or lead.signup_ms > order_ms:
            lead.signup_ms = order_ms - rng.randint(5, 60) * MINUTE
        if rng.random() < 0.02 + 0.1 * (1 - intent):
            lead.refund_ms = order_ms + rng.randint(1, 14 * 24 * 60) * MINUTE
