"""Acquisition and lead conversion: web visits, the CRM lead, advisors, the app sign-up, trials, orders.

Identities follow the One-ID story of an online school: a visitor is anonymous on the landing page,
leaves a mobile number in the form, becomes a CRM lead (crm_lead_id + mobile), adds the advisor on
WeChat (wechat_unionid), and signs up in the app with the same mobile (login_id + mobile).
"""

from __future__ import annotations

import math
import random
from collections import defaultdict

from edupulse.sim.catalog import APP_PATHS, CHANNELS, COURSES, HOUR_WEIGHTS, LANDING_PATHS, REFERRAL, Channel
from edupulse.sim.clock import DAY, HOUR, MINUTE, Clock
from edupulse.sim.emit import ANON, CRM, LOGIN, Emitter
from edupulse.sim.leads import IdentityValues, Lead
from edupulse.sim.orders import Orders
from edupulse.sim.rand import Weighted, poisson

SITE = "https://school.example.com"
SEARCH_REFERRERS = ("https://www.baidu.com/", "https://www.so.com/", "https://www.sogou.com/")
SpendRow = tuple[int, str, str, float, int, int]  # day, channel, campaign, cost, impressions, clicks


class Acquisition:
    """Emits everything of a learner before the learning starts, and the referrer's shares."""

    def __init__(
        self, clock: Clock, emitter: Emitter, rng: random.Random, orders: Orders, ids: IdentityValues,
        leads: list[Lead],
    ) -> None:
        self.clock = clock
        self.em = emitter
        self.rng = rng
        self.orders = orders
        self.ids = ids
        self.leads = leads
        self.visitors = 0  # anonymous visitors who never became leads (each one person)
        self.hour_pick = Weighted(range(24), HOUR_WEIGHTS)

    def emit(self, lead: Lead) -> tuple[str, int] | None:
        """Everything up to the first order; returns that order (id, amount) if it was paid in the period."""
        spec = CHANNELS[lead.channel]
        self._visitors(lead, spec)
        if spec.name != "offline_event":
            self._web_visit(lead, spec)
        self._crm(lead, spec)
        self._app(lead)
        if not lead.order_ms:
            return None
        first = self.orders.pay(lead, lead.course, lead.order_ms, "first", lead.discount)
        if first is not None:
            self._shares(lead)
        return first

    # web ----------------------------------------------------------------------------------------

    def _utm(self, lead: Lead, spec: Channel) -> dict[str, str]:
        if spec.name == "organic":
            return {"referrer": SEARCH_REFERRERS[lead.idx % 3]}
        return {"utm_source": spec.name, "utm_medium": spec.utm_medium, "utm_campaign": lead.campaign}

    def _landing(self, lead: Lead, spec: Channel) -> str:
        if spec.name == REFERRAL:
            referrer = lead.referrer if lead.referrer >= 0 else lead.idx
            return f"{SITE}/share/{self.leads[referrer].login_id}"
        return SITE + LANDING_PATHS[0].format(campaign=lead.campaign)

    def _visitors(self, lead: Lead, spec: Channel) -> None:
        """People who came through the same campaign that day and left without a trace but a page view."""
        if not lead.visitors:
            return
        rng, em, clock = self.rng, self.em, self.clock
        rnd = rng.random
        day = lead.day
        utm = self._utm(lead, spec)
        landing = self._landing(lead, spec)
        course_page = SITE + LANDING_PATHS[1].format(course=COURSES[lead.course].course_id)
        click = {"channel": spec.name, "campaign": lead.campaign, **utm}
        for _ in range(lead.visitors):
            self.visitors += 1
            anon = self.ids.hex_id((1 << 41) + self.visitors)
            t = clock.at(day, self.hour_pick.pick(rng) + rnd())
            if spec.paid:
                em.track("ad_click", ANON, anon, t - 4000, click)
            em.track("page_view", ANON, anon, t, {"url": landing, "platform": spec.platform, **utm})
            if rnd() < 0.3:
                em.track("page_view", ANON, anon, t + int(10 + rnd() * 170) * 1000,
                         {"url": course_page, "platform": spec.platform})

    def _web_visit(self, lead: Lead, spec: Channel) -> None:
        rng, em = self.rng, self.em
        t0, anon, intent = lead.lead_ms, lead.anon_id, lead.intent
        first = t0 - 2 * MINUTE - int(rng.random() ** 3 * 2 * DAY)
        utm = self._utm(lead, spec)
        if spec.paid:
            em.track("ad_click", ANON, anon, first - 4000, {"channel": spec.name, "campaign": lead.campaign, **utm})
        views = 1 + int(rng.random() * (1 + 4 * intent))
        course = COURSES[lead.course].course_id
        for k in range(views):
            t = first + (t0 - MINUTE - first) * k // views
            if k == 0:
                props = {"url": self._landing(lead, spec), "platform": spec.platform, **utm}
            else:
                path = LANDING_PATHS[2] if rng.random() < intent else LANDING_PATHS[1 + rng.randrange(4)]
                props = {"url": SITE + path.format(course=course), "platform": spec.platform}
            em.track("page_view", ANON, anon, t, props)
        mobile = {"mobile": lead.mobile}
        if lead.referrer >= 0:
            em.track("referral_signup", ANON, anon, t0 - 50_000,
                     {"referrer_id": self.leads[lead.referrer].login_id}, identities=mobile)
        # the lead form of the landing page: name, city, grade and the mobile number
        em.profile("profile_set", ANON, anon, t0 - 40_000,
                   {"name": lead.name, "city": lead.city, "grade": lead.grade}, identities=mobile)
        em.profile("profile_set_once", ANON, anon, t0 - 40_000, {"channel": spec.name, "campaign": lead.campaign})

    # CRM ----------------------------------------------------------------------------------------

    def _crm(self, lead: Lead, spec: Channel) -> None:
        rng, em = self.rng, self.em
        crm, advisor = lead.crm_lead_id, f"adv-{lead.advisor + 1:03d}"
        em.track("lead_created", CRM, crm, lead.lead_ms,
                 {"channel": spec.name, "campaign": lead.campaign, "source_system": spec.source_system},
                 identities={"mobile": lead.mobile})
        if spec.name == "offline_event":  # entered by staff at the seminar: the CRM knows the profile
            em.profile("profile_set", CRM, crm, lead.lead_ms + 1,
                       {"name": lead.name, "city": lead.city, "grade": lead.grade})
            em.profile("profile_set_once", CRM, crm, lead.lead_ms + 1,
                       {"channel": spec.name, "campaign": lead.campaign})
        em.track("lead_assigned", CRM, crm, lead.assign_ms, {"advisor_id": advisor})
        em.profile("profile_set", CRM, crm, lead.assign_ms + 1, {"advisor_id": advisor, "lead_status": "assigned"})
        for t in lead.calls:
            em.track("call_connected", CRM, crm, t, {"advisor_id": advisor, "duration_s": rng.randint(40, 900)})
        if lead.qualified_ms:
            em.track("lead_qualified", CRM, crm, lead.qualified_ms, {"advisor_id": advisor})
        if lead.wechat_ms:
            em.track("wechat_added", CRM, crm, lead.wechat_ms, {"advisor_id": advisor},
                     identities={"wechat_unionid": lead.wechat_unionid})
        if lead.trial_booked_ms:
            em.track("trial_booked", CRM, crm, lead.trial_booked_ms,
                     {"course_id": COURSES[lead.course].course_id, "advisor_id": advisor,
                      "trial_at": self.clock.iso(lead.trial_ms)})

    # app ----------------------------------------------------------------------------------------

    def _app(self, lead: Lead) -> None:
        if not lead.signup_ms:
            return
        rng, em = self.rng, self.em
        login, t = lead.login_id, lead.signup_ms
        # signing up with an SMS code: the app knows the login and the mobile together
        if not em.profile("profile_set", LOGIN, login, t, {"name": lead.name, "signup_platform": "app"},
                          identities={"mobile": lead.mobile}):
            return
        lead.signed_up = True
        course = COURSES[lead.course]
        em.profile("profile_append", LOGIN, login, t + 1000, {"interests": [course.subject]})
        until = lead.order_ms or (t + 5 * DAY)
        for _ in range(int(rng.random() * (1 + 5 * lead.intent))):
            at = t + int(rng.random() * max(until - t, MINUTE))
            path = APP_PATHS[1] if rng.random() < lead.intent else APP_PATHS[rng.randrange(len(APP_PATHS))]
            em.track("page_view", LOGIN, login, at,
                     {"url": "app:/" + path.format(course=course.course_id), "platform": "app"})
        if lead.trial_attended:
            em.track("trial_attended", LOGIN, login, lead.trial_ms + rng.randint(0, 5) * MINUTE,
                     {"course_id": course.course_id, "duration_s": rng.randint(25, 45) * 60})

    # referral -----------------------------------------------------------------------------------

    def _shares(self, lead: Lead) -> None:
        """The referrer's shares: one before each referee arrived, and more that brought nobody."""
        rng, em = self.rng, self.em
        after = lead.order_ms + HOUR
        for k, referee in enumerate(lead.referees):
            t = max(after, self.leads[referee].lead_ms - rng.randint(1, 72) * HOUR)
            em.track("referral_shared", LOGIN, lead.login_id, t,
                     {"share_to": "wechat_moments" if k % 2 else "wechat_chat", "share_id": f"S{lead.idx + 1}-{k + 1}"})
        span = self.clock.end_ms - after
        for k in range(poisson(rng, min(lead.advocacy, 20.0) * 0.8)):
            if span > 0:
                em.track("referral_shared", LOGIN, lead.login_id, after + int(rng.random() * span),
                         {"share_to": "wechat_moments", "share_id": f"S{lead.idx + 1}-x{k + 1}"})


def plan_spend(leads: list[Lead], days: int, rng: random.Random) -> list[SpendRow]:
    """Daily spend per paid campaign: cost follows the leads it bought at the channel's cost per lead."""
    leads_by_day: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0] * days)
    visits_by_day: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0] * days)
    for lead in leads:
        key = (lead.channel, lead.campaign)
        leads_by_day[key][lead.day] += 1
        visits_by_day[key][lead.day] += 1 + lead.visitors
    rows: list[SpendRow] = []
    for channel_index, spec in enumerate(CHANNELS):
        if not spec.paid:
            continue
        for campaign in spec.campaigns:
            daily = leads_by_day[(channel_index, campaign)]
            visits = visits_by_day[(channel_index, campaign)]
            mean = max(sum(daily) / days, 0.05)
            for day in range(days):
                cost = spec.cost_per_lead * (0.5 * mean + 0.5 * daily[day]) * math.exp(rng.gauss(0.0, 0.12))
                clicks = round((visits[day] + 0.5 * mean) * (1.05 + 0.2 * rng.random()))
                impressions = round(clicks / spec.click_through * (0.85 + 0.3 * rng.random()))
                rows.append((day, spec.name, campaign, round(cost, 2), impressions, clicks))
    return rows
