"""Courses, classes and their lessons: the timetable students are scheduled into.

Each course opens a cohort every week; a cohort fills sections of CLASS_CAPACITY students. A class
is a group (type "class"), its lessons and the courses are items, all announced when first used.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from edupulse.sim.catalog import CLASS_CAPACITY, COURSES, TIMETABLES
from edupulse.sim.clock import DAY, Clock
from edupulse.sim.emit import Emitter

TEACHERS_PER_SUBJECT = 8
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(slots=True)
class ClassInfo:
    class_id: str
    course: int
    start_day: int
    teacher_id: str
    lessons: list[tuple[str, int]]  # (lesson_id, starts_at ms), in time order
    groups: dict[str, str]


class ClassRegistry:
    """Assigns students to class sections and emits classes, lessons and courses once."""

    def __init__(self, clock: Clock, emitter: Emitter, rng: random.Random) -> None:
        self.clock = clock
        self.em = emitter
        self.rng = rng
        self.classes: dict[tuple[int, int, int], ClassInfo] = {}
        self.seats: dict[tuple[int, int], int] = {}
        self.opened_per_subject: dict[str, int] = {}
        # Teachers differ: a student's chance to attend is multiplied by the teacher's factor.
        self.teacher_factor: dict[str, float] = {}

    def emit_courses(self) -> None:
        for course in COURSES:
            self.em.item("course", course.course_id, self.clock.start_ms, {
                "name": course.name,
                "subject": course.subject,
                "price": course.price,
                "lessons": course.lessons,
                "minutes": course.minutes,
                "next_course": course.next_course,
                "grades": list(course.grades),
                "knowledge_points": [kp.name for kp in course.knowledge_points],
            })

    def assign(self, course: int, after_ms: int) -> ClassInfo:
        """A seat in the first cohort of `course` that starts after the day of `after_ms`."""
        day = self.clock.day_of(after_ms) + 1
        cohort = day + (course % 7 - day) % 7
        seat = self.seats.get((course, cohort), 0)
        self.seats[(course, cohort)] = seat + 1
        key = (course, cohort, seat // CLASS_CAPACITY)
        found = self.classes.get(key)
        if found is None:
            found = self.classes[key] = self._open(*key)
        return found

    def _open(self, course: int, cohort: int, section: int) -> ClassInfo:
        spec = COURSES[course]
        clock = self.clock
        weekdays, hour = TIMETABLES[(course + cohort // 7 + section) % len(TIMETABLES)]
        lesson_days: list[int] = []
        day = cohort
        while len(lesson_days) < spec.lessons:
            if clock.weekday(day) in weekdays:
                lesson_days.append(day)
            day += 1
        opened = self.opened_per_subject.get(spec.subject, 0)
        self.opened_per_subject[spec.subject] = opened + 1
        teacher = f"t-{spec.subject}-{opened % TEACHERS_PER_SUBJECT + 1:02d}"
        if teacher not in self.teacher_factor:
            self.teacher_factor[teacher] = round(0.86 + 0.18 * self.rng.random(), 3)
        class_id = f"{spec.course_id}-{clock.date(cohort):%y%m%d}-{section + 1}"
        lessons = [(f"{class_id}-{i + 1:02d}", clock.at(d, hour)) for i, d in enumerate(lesson_days)]
        timetable = ",".join(_WEEKDAYS[w] for w in weekdays) + f" {int(hour):02d}:{int(hour % 1 * 60):02d}"
        opened_ms = clock.midnight(cohort) - 10 * DAY
        self.em.group("class", class_id, opened_ms, {
            "name": f"{spec.name} {clock.date(cohort):%m/%d} #{section + 1}",
            "course_id": spec.course_id,
            "teacher_id": teacher,
            "start_date": clock.date(cohort).isoformat(),
            "timetable": timetable,
            "lessons": spec.lessons,
            "capacity": CLASS_CAPACITY,
        })
        for i, (lesson_id, starts) in enumerate(lessons):
            self.em.item("lesson", lesson_id, opened_ms, {
                "course_id": spec.course_id,
                "class_id": class_id,
                "index": i + 1,
                "starts_at": clock.iso(starts),
                "teacher_id": teacher,
                "minutes": spec.minutes,
            })
        return ClassInfo(class_id, course, cohort, teacher, lessons, {"class": class_id})
