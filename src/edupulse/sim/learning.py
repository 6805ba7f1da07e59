"""The learning service: enrolment, scheduled lessons, attendance, completion, homework, quizzes,
drifting students, course completion, renewals and upsells.

Every enrolment gets a planted attendance pattern: steady, drifting (attendance decays from some
lesson on) or dropout (stops at some lesson). A student who misses three scheduled lessons of a class
in a row is at risk; some come back after the supervisor's recall. What really happened (what the
emitted events show) is collected for the ground truth.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from edupulse.sim.catalog import COURSE_INDEX, COURSES, ENTRY_COURSES
from edupulse.sim.classes import ClassInfo, ClassRegistry
from edupulse.sim.clock import DAY, HOUR, MINUTE, Clock
from edupulse.sim.emit import LOGIN, Emitter
from edupulse.sim.leads import Lead
from edupulse.sim.orders import Orders

STEADY, DRIFTING, DROPOUT = "steady", "drifting", "dropout"
CHURN_INACTIVE_DAYS = 14
RISK_STREAK = 3
_FIRST_PATTERNS = ((STEADY, 0.62), (DRIFTING, 0.24), (DROPOUT, 0.14))
_LOYAL_PATTERNS = ((STEADY, 0.8), (DRIFTING, 0.14), (DROPOUT, 0.06))
_NEVER = 1 << 62


@dataclass
class LearningFacts:
    """What the learning events show, gathered while they are emitted."""

    at_risk: list[dict[str, Any]] = field(default_factory=list)
    churned: list[dict[str, Any]] = field(default_factory=list)
    course_ends: list[dict[str, Any]] = field(default_factory=list)  # each enrolment whose lessons ended
    enrolments: int = 0
    course_completions: int = 0
    scheduled: int = 0
    attended: int = 0
    patterns: dict[str, int] = field(default_factory=dict)
    kp_answers: dict[str, list[int]] = field(default_factory=dict)  # knowledge point -> [answers, correct]


@dataclass(slots=True)
class Outcome:
    """One enrolment's result."""

    scheduled: int = 0
    attended: int = 0
    completed: int = 0
    homework: int = 0
    answers: int = 0
    correct: int = 0
    finished: bool = False
    last_start_ms: int = 0


@dataclass(slots=True)
class Student:
    ability: float
    diligence: float
    recent_scheduled: bool = False
    recent_attended: bool = False
    last_attended_ms: int = 0
    upsold: bool = False


class _Session:
    """What the lessons of one enrolment share, computed once."""

    __slots__ = ("accuracy", "course_id", "groups", "homework_p", "kp_stats", "kps", "length_s", "login", "student")

    def __init__(self, lead: Lead, student: Student, cls: ClassInfo, pattern: str, facts: LearningFacts) -> None:
        spec = COURSES[cls.course]
        self.login = lead.login_id
        self.student = student
        self.course_id = spec.course_id
        self.groups = cls.groups
        self.length_s = spec.minutes * 60
        self.kps = spec.knowledge_points
        # accuracy falls with a knowledge point's difficulty and rises with the student's ability
        self.accuracy = [min(0.98, max(0.05, 0.97 - 0.75 * kp.difficulty + 0.5 * (student.ability - 0.5)))
                         for kp in self.kps]
        self.kp_stats = [facts.kp_answers.setdefault(kp.name, [0, 0]) for kp in self.kps]
        self.homework_p = 0.3 + 0.6 * student.diligence * (0.6 if pattern != STEADY else 1.0)


def renewal_propensity(attendance: float, homework: float, accuracy: float) -> float:
    """How likely a student renews when a course ends: a logistic function of the learning record the events
    show, most of all attendance (a student who came to nearly every lesson renews about 4 times in 5, one who
    came to half of them about 1 in 5), then quiz accuracy (progress a family can see) and homework."""
    z = -0.4 + 8.0 * (attendance - 0.72) + 3.0 * (homework - 0.75) + 4.0 * (accuracy - 0.65)
    return min(0.95, max(0.02, 1.0 / (1.0 + math.exp(-z))))


def who(lead: Lead) -> dict[str, str]:
    """The identities a query can see for a learner."""
    out = {"crm_lead_id": lead.crm_lead_id, "mobile": lead.mobile}
    if lead.signed_up:
        out["login_id"] = lead.login_id
    return out


class Learning:
    """Serves a paying learner from the first enrolment to the end of the period."""

    def __init__(
        self, clock: Clock, emitter: Emitter, rng: random.Random, orders: Orders, classes: ClassRegistry
    ) -> None:
        self.clock = clock
        self.em = emitter
        self.rng = rng
        self.orders = orders
        self.classes = classes
        self.facts = LearningFacts()
        self.recent_from = clock.end_ms - CHURN_INACTIVE_DAYS * DAY

    def serve(self, lead: Lead, first_order: tuple[str, int]) -> None:
        rng = self.rng
        student = Student(
            ability=min(0.95, max(0.05, rng.gauss(0.5 + 0.2 * lead.intent, 0.15))),
            diligence=0.8 + 0.17 * rng.random(),
        )
        stop_ms = _NEVER
        if lead.refund_ms and self.orders.refund(lead, first_order[0], lead.course, first_order[1], lead.refund_ms):
            stop_ms = lead.refund_ms
        queue: list[tuple[int, int, str]] = [(lead.course, lead.order_ms, "first")]
        while queue:
            course, order_ms, order_type = queue.pop(0)
            self._enrolment(lead, student, course, order_ms, order_type, stop_ms, queue)
        if student.recent_scheduled and not student.recent_attended:
            self.facts.churned.append({
                **who(lead),
                "last_attended_at": self.clock.iso(student.last_attended_ms) if student.last_attended_ms else None,
            })

    def _pattern(self, order_type: str) -> str:
        options = _FIRST_PATTERNS if order_type == "first" else _LOYAL_PATTERNS
        x = self.rng.random()
        for name, weight in options:
            x -= weight
            if x < 0:
                return name
        return STEADY

    def _enrolment(
        self, lead: Lead, student: Student, course: int, order_ms: int, order_type: str, stop_ms: int,
        queue: list[tuple[int, int, str]],
    ) -> None:
        cls = self.classes.assign(course, order_ms)
        spec = COURSES[course]
        enrol_ms = order_ms + self.rng.randint(1, 30) * MINUTE
        if not self.em.track("course_enrolled", LOGIN, lead.login_id, enrol_ms,
                             {"course_id": spec.course_id, "class_id": cls.class_id}, cls.groups):
            return
        facts = self.facts
        facts.enrolments += 1
        pattern = self._pattern(order_type)
        facts.patterns[pattern] = facts.patterns.get(pattern, 0) + 1
        out = self._lessons(lead, student, cls, enrol_ms, pattern, stop_ms, queue)
        facts.scheduled += out.scheduled
        facts.attended += out.attended
        decision = self._course_end(lead, student, cls, out, enrol_ms, queue) if out.finished else {}
        # A student's course ends with the last lesson scheduled for them: the course's last one, or the last
        # before they left after a refund; a course still running at the end of the period has not ended.
        if out.scheduled and (out.finished or stop_ms < self.clock.end_ms):
            facts.course_ends.append({
                **who(lead), "idx": lead.idx, "course_id": spec.course_id, "class_id": cls.class_id,
                "ended_at": self.clock.iso(out.last_start_ms), "last_lesson_ms": out.last_start_ms,
                "refunded": order_type == "first" and stop_ms < _NEVER, **decision,
            })

    def _lessons(
        self, lead: Lead, student: Student, cls: ClassInfo, enrol_ms: int, pattern: str, stop_ms: int,
        queue: list[tuple[int, int, str]],
    ) -> Outcome:
        rng, em = self.rng, self.em
        rnd = rng.random
        ctx = _Session(lead, student, cls, pattern, self.facts)
        end = min(self.clock.end_ms, stop_ms)
        p0 = student.diligence * self.classes.teacher_factor[cls.teacher_id]
        turn = rng.randint(2, max(2, len(cls.lessons) - 2))
        out = Outcome(finished=True)
        streak, risk, recovered, came_back = 0, None, False, False
        for i, (lesson_id, starts) in enumerate(cls.lessons):
            if starts >= end:
                out.finished = False
                break
            out.scheduled += 1
            out.last_start_ms = starts
            scheduled_ms = starts - DAY if starts - DAY > enrol_ms else enrol_ms + MINUTE
            em.track("lesson_scheduled", LOGIN, ctx.login, scheduled_ms,
                     {"lesson_id": lesson_id, "course_id": ctx.course_id, "starts_at": starts}, ctx.groups)
            if starts >= self.recent_from:
                student.recent_scheduled = True
            if pattern == STEADY or i < turn:
                p = p0
            elif recovered:
                p = 0.85 * p0
            elif pattern == DRIFTING:
                p = p0 * 0.5 ** (i - turn + 1)
            else:
                p = 0.0
            if rnd() < p and self._attend(ctx, lesson_id, starts, out):
                streak = 0
                came_back = risk is not None
                if i == 4 and not student.upsold and pattern == STEADY and rng.random() < 0.08:
                    self._upsell(lead, student, cls.course, starts + rng.randint(2, 48) * HOUR, queue)
                continue
            streak += 1
            if streak == RISK_STREAK and risk is None:
                risk = (lesson_id, starts)
                # the supervisor's recall brings some back
                recovered = rng.random() < (0.35 if pattern == DRIFTING else 0.1)
        if risk is not None:
            self._at_risk(lead, cls, pattern, risk, came_back)
        return out

    def _attend(self, ctx: _Session, lesson_id: str, starts: int, out: Outcome) -> bool:
        """Attendance and what follows it: completion, in-class quiz, homework. False if after the period."""
        rnd, em = self.rng.random, self.em
        login, course_id, groups, length_s = ctx.login, ctx.course_id, ctx.groups, ctx.length_s
        # (hot path: draws are random() arithmetic, several times cheaper than randint / randrange)
        if rnd() < 0.88:
            mode, t = "live", starts + int(rnd() * 7) * MINUTE
        else:
            mode, t = "replay", starts + int(180 + rnd() * 2700) * MINUTE
        duration = length_s - int(length_s * 0.3 * rnd() ** 3)
        if not em.track("lesson_attended", LOGIN, login, t,
                        {"lesson_id": lesson_id, "mode": mode, "duration_s": duration}, groups):
            return False
        out.attended += 1
        student = ctx.student
        student.last_attended_ms = max(student.last_attended_ms, t)
        if t >= self.recent_from:
            student.recent_attended = True
        done_ms = t + duration * 1000
        if duration >= 0.8 * length_s and em.track(
            "lesson_completed", LOGIN, login, done_ms, {"lesson_id": lesson_id, "course_id": course_id}, groups
        ):
            out.completed += 1
        kps, accuracy, kp_stats = ctx.kps, ctx.accuracy, ctx.kp_stats
        n_kps = len(kps)
        for q in range(1 + int(rnd() * 3)):
            k = int(rnd() * n_kps)
            correct = rnd() < accuracy[k]
            if em.track("quiz_answered", LOGIN, login, t + (q + 1) * 5 * MINUTE, {
                "lesson_id": lesson_id, "question_id": f"{course_id}-k{k + 1}-q{int(rnd() * 8) + 1}",
                "knowledge_point": kps[k].name, "correct": correct,
            }, groups):
                out.answers += 1
                stats = kp_stats[k]
                stats[0] += 1
                if correct:
                    out.correct += 1
                    stats[1] += 1
        if rnd() < ctx.homework_p and em.track(
            "homework_submitted", LOGIN, login, done_ms + int(1 + rnd() * 40) * HOUR,
            {"lesson_id": lesson_id, "course_id": course_id,
             "score": min(100, int(50 + 40 * student.ability + rnd() * 20))}, groups,
        ):
            out.homework += 1
        return True

    def _at_risk(self, lead: Lead, cls: ClassInfo, pattern: str, risk: tuple[str, int], came_back: bool) -> None:
        self.facts.at_risk.append({
            **who(lead),
            "class_id": cls.class_id,
            "course_id": COURSES[cls.course].course_id,
            "third_missed_lesson_id": risk[0],
            "third_missed_at": self.clock.iso(risk[1]),
            "pattern": pattern,
            "came_back": came_back,
        })

    def _upsell(self, lead: Lead, student: Student, course: int, t: int, queue: list[tuple[int, int, str]]) -> None:
        subject = COURSES[course].subject
        options = [i for i in ENTRY_COURSES if COURSES[i].subject != subject and lead.grade in COURSES[i].grades]
        if not options:
            return
        other = options[self.rng.randrange(len(options))]
        if self.orders.pay(lead, other, t, "upsell", 0.9):
            student.upsold = True
            queue.append((other, t, "upsell"))

    def _course_end(
        self, lead: Lead, student: Student, cls: ClassInfo, out: Outcome, enrol_ms: int,
        queue: list[tuple[int, int, str]],
    ) -> dict[str, Any]:
        """Completion, then the renewal decision: more likely the better the student attended. Returns what
        the decision was made of (nothing after the last level, which has nothing to renew)."""
        rng = self.rng
        spec = COURSES[cls.course]
        ended_ms = out.last_start_ms + spec.minutes * MINUTE
        completed = out.completed >= 0.7 * spec.lessons and self.em.track(
            "course_completed", LOGIN, lead.login_id, ended_ms + 5 * MINUTE,
            {"course_id": spec.course_id, "class_id": cls.class_id}, cls.groups,
        )
        if completed:
            self.facts.course_completions += 1
        if spec.next_course is None:
            return {}
        attendance = out.attended / out.scheduled if out.scheduled else 0.0
        homework = out.homework / out.attended if out.attended else 0.0
        accuracy = out.correct / out.answers if out.answers else 0.0
        propensity = renewal_propensity(attendance, homework, accuracy)
        renew_ms = max(enrol_ms + DAY, ended_ms + rng.randint(-5 * 24, 10 * 24) * HOUR)
        renewed = False
        if rng.random() < propensity:
            nxt = COURSE_INDEX[spec.next_course]
            if self.orders.pay(lead, nxt, renew_ms, "renewal", (1.0, 0.9)[rng.randrange(2)]):
                renewed = True
                queue.append((nxt, renew_ms, "renewal"))
        return {
            "attendance_rate": round(attendance, 3),
            "homework_rate": round(homework, 3),
            "quiz_accuracy": round(accuracy, 3),
            "propensity": round(propensity, 3),
            "paid_next_level": renewed,
        }
