"""Orders and refunds: the order system's events plus the profile operations that keep totals."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from edupulse.sim.catalog import CHANNELS, COURSES
from edupulse.sim.emit import LOGIN, Emitter
from edupulse.sim.leads import Lead

PAY_METHODS = ("wechat_pay", "alipay", "installment")


@dataclass
class OrderBook:
    """Counts of what was really emitted, for the summary and the ground truth."""

    orders: int = 0
    refunds: int = 0
    revenue: float = 0.0
    refunded: float = 0.0
    by_type: dict[str, int] = field(default_factory=dict)
    first_orders_by_channel: dict[str, int] = field(default_factory=dict)
    revenue_by_channel: dict[str, float] = field(default_factory=dict)  # all orders, by the learner's channel
    renewals: dict[int, list[int]] = field(default_factory=dict)  # learner index -> times of renewal orders


class Orders:
    """Emits `order_paid` / `order_refunded` for learners and keeps the book."""

    def __init__(self, emitter: Emitter, rng: random.Random) -> None:
        self.em = emitter
        self.rng = rng
        self.book = OrderBook()

    def pay(self, lead: Lead, course: int, t: int, order_type: str, discount: float = 1.0) -> tuple[str, int] | None:
        """Emit a paid order; returns (order_id, amount), or None when `t` is after the period."""
        spec = COURSES[course]
        amount = round(spec.price * discount)
        order_id = f"O{lead.idx + 1:06d}-{lead.orders + 1}"
        channel = CHANNELS[lead.channel].name
        props = {
            "order_id": order_id,
            "amount": amount,
            "course_id": spec.course_id,
            "order_type": order_type,
            "channel": channel,
            "advisor_id": f"adv-{lead.advisor + 1:03d}",
            "pay_method": PAY_METHODS[self.rng.randrange(3)],
        }
        if not self.em.track("order_paid", LOGIN, lead.login_id, t, props, identities={"mobile": lead.mobile}):
            return None
        lead.orders += 1
        lead.revenue += amount
        lead.paid = True
        self.em.profile("profile_increment", LOGIN, lead.login_id, t + 1, {"total_paid": amount, "order_count": 1})
        self.em.profile(
            "profile_set", LOGIN, lead.login_id, t + 1,
            {"student_status": "active", "lead_status": "customer", "current_course": spec.course_id},
        )
        book = self.book
        book.orders += 1
        book.revenue += amount
        book.by_type[order_type] = book.by_type.get(order_type, 0) + 1
        book.revenue_by_channel[channel] = book.revenue_by_channel.get(channel, 0.0) + amount
        if order_type == "first":
            book.first_orders_by_channel[channel] = book.first_orders_by_channel.get(channel, 0) + 1
        elif order_type == "renewal":
            book.renewals.setdefault(lead.idx, []).append(t)
        return order_id, amount

    def refund(self, lead: Lead, order_id: str, course: int, amount: int, t: int) -> bool:
        props = {
            "order_id": order_id,
            "amount": amount,
            "course_id": COURSES[course].course_id,
            "reason": ("schedule_conflict", "not_satisfied", "price", "moved")[self.rng.randrange(4)],
        }
        if not self.em.track("order_refunded", LOGIN, lead.login_id, t, props):
            return False
        self.em.profile("profile_increment", LOGIN, lead.login_id, t + 1, {"total_paid": -amount, "refund_count": 1})
        self.em.profile("profile_set", LOGIN, lead.login_id, t + 1, {"student_status": "refunded"})
        self.book.refunds += 1
        self.book.refunded += amount
        return True
