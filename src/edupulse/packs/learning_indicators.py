"""Pack 7, learning indicators (学习指标体系): attendance, completion and homework submission rates (the
catalogue's definitions: per student and scheduled lesson) and quiz accuracy, overall and per course, per class,
per teacher and, for one class (its printable report), per student; and knowledge points ranked by difficulty
(lowest accuracy first), for the academic supervisor.

A class, its course and its teacher are read from the `class` group the learning events carry (`group.class`,
and that class's `course_id` and `teacher_id`); a project without class groups, or whose classes have no
`course_id` property, gets the per-course numbers by the events' own `course_id` (as the installed report, which
must run on any project, always does; quiz answers carry no course_id of their own, so there the quiz accuracy
per course needs the class). A student is named by the
person's `name`. Each table is one trends query broken down by its property: one statement per metric, whatever
the number of courses, classes or teachers (at most 100 of each, the most scheduled lessons first).

With `class_id`, the headline is that class's report (`class_report`: the class and each of its students) and
leaves the per-course, per-class and per-teacher tables empty."""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict

from edupulse.packs.headline import Card, Headline, PackError, PackRun, by_key, ratio
from edupulse.packs.spec import DashboardPart, MetricPart, Pack, ReportPart, Stage
from edupulse.queries.results import Masker
from edupulse.queries.trends import TrendsResponse

NAME = "learning_indicators"
CORRECT = [{"property": "correct", "op": "eq", "value": True}]
CLASS = "group.class"
BY_GROUP = {"course": "group.class.course_id", "class": CLASS, "teacher": "group.class.teacher_id"}
STUDENT = "person.name"
INDICATORS = ("attendance_rate", "completion_rate", "homework_rate", "quiz_accuracy")
RATES = {"kind": "trends", "granularity": "week", "date_range": {"date_from": "-29d"},
         "series": [{"metric": "attendance_rate"}, {"metric": "completion_rate"}]}
KNOWLEDGE = {"kind": "trends", "granularity": "month", "date_range": {"date_from": "-29d"},
             "series": [{"event": "quiz_answered"}, {"event": "quiz_answered", "filters": CORRECT}],
             "breakdown": {"properties": ["knowledge_point"], "limit": 100}}
QUIZ = {"kind": "trends", "granularity": "week", "date_range": {"date_from": "-29d"},
        "series": [{"metric": "quiz_accuracy"}]}

METRICS = (
    MetricPart("homework_rate", {
        "title": "作业提交率 homework submission rate", "unit": "%", "scale": 100,
        "description": "Lessons with homework submitted / scheduled lessons, per student and lesson: of the lessons "
                       "scheduled for a student (lesson_scheduled) that start in the period (starts_at; when it is "
                       "missing, when the lesson was scheduled), those the student submitted homework for "
                       "(homework_submitted with the same lesson_id, at any time).",
        "cohort": {"event": "lesson_scheduled", "per": "lesson_id", "time": "starts_at"},
        "outcome": {"event": "homework_submitted", "same": True, "from_days": None}, "ratio": "rate"}),
    MetricPart("scheduled_lessons", {
        "title": "排课数 scheduled lessons", "unit": "count",
        "description": "Lessons scheduled for students that start in the period, per student and lesson (the "
                       "denominator of the attendance, completion and homework rates).",
        "cohort": {"event": "lesson_scheduled", "per": "lesson_id", "time": "starts_at"}, "ratio": "entries"}),
    MetricPart("quiz_accuracy", {
        "title": "答题正确率 quiz accuracy", "unit": "%", "scale": 100,
        "description": "Correct answers / answers: quiz_answered with correct true / all quiz_answered in the period.",
        "numerator": {"event": "quiz_answered", "filters": CORRECT}, "denominator": {"event": "quiz_answered"}}),
)


def indicators_query(breakdown: list[str] | None, filters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The four indicators and the scheduled lessons (per value of a breakdown), each metric one statement."""
    query: dict[str, Any] = {"kind": "trends", "granularity": "month", "date_range": {"date_from": "-29d"},
                             "series": [*({"metric": m} for m in INDICATORS), {"metric": "scheduled_lessons"}]}
    if breakdown:
        query["breakdown"] = {"properties": breakdown, "limit": 100}
    if filters:
        query["filters"] = filters
    return query


REPORTS = (
    ReportPart("rates", "到课率与完课率 Attendance and completion rates", RATES, width=12),
    ReportPart("knowledge", "知识点答题（全部 / 答对） Knowledge points: answers and correct answers", KNOWLEDGE,
               view={"chart": "bar"}, width=12),
    ReportPart("quiz", "答题正确率 Quiz accuracy", QUIZ),
    ReportPart("courses", "各课程学习指标 Learning indicators by course", indicators_query(["course_id"]),
               view={"chart": "bar"}),
)


class Indicators(BaseModel):
    """A course's, class's, teacher's or student's indicators: shares (0.25 = 25 %), None without lessons."""

    model_config = ConfigDict(extra="forbid")
    scheduled_lessons: int
    attendance_rate: float | None
    completion_rate: float | None
    homework_rate: float | None
    quiz_accuracy: float | None


class CourseRow(Indicators):
    course_id: str


class ClassRow(Indicators):
    class_id: str


class TeacherRow(Indicators):
    teacher_id: str


class StudentRow(Indicators):
    student: str


class KnowledgePoint(BaseModel):
    model_config = ConfigDict(extra="forbid")
    knowledge_point: str
    answers: int
    correct: int
    accuracy: float | None


class ClassReport(BaseModel):
    """One class, for its printable report: the class's indicators and each of its students'."""

    model_config = ConfigDict(extra="forbid")
    class_id: str
    name: str | None
    course_id: str | None
    teacher_id: str | None
    indicators: Indicators
    students: list[StudentRow]


class LearningIndicators(Headline):
    attendance_rate: float | None
    completion_rate: float | None
    homework_rate: float | None
    quiz_accuracy: float | None
    scheduled_lessons: int
    courses: list[CourseRow]
    classes: list[ClassRow]
    teachers: list[TeacherRow]
    knowledge_points: list[KnowledgePoint]
    class_report: ClassReport | None = None

    def masked(self, masker: Masker) -> Self:
        """Students' names masked (a name is personal), in the same order."""
        report = self.class_report
        if report is None or not masker.personal(STUDENT):
            return self
        students = [s.model_copy(update={"student": masker.value(STUDENT, s.student)}) for s in report.students]
        return self.model_copy(update={"class_report": report.model_copy(update={"students": students})})


def _has_classes(run: PackRun) -> bool:
    meta = run.service.metadata
    return meta is not None and "class" in meta.group_types(run.project.id)


def _rows(result: TrendsResponse) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Per breakdown key, the indicators (shares) and the scheduled lessons; $other and missing values left out."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for series in result.series:
        key = tuple(series.breakdown or [])
        if any(v is None or v == "$other" for v in key):
            continue
        mine = out.setdefault(key, {})
        if series.index < len(INDICATORS):
            mine[INDICATORS[series.index]] = ratio(series.aggregated_value, 100)
        else:
            mine["scheduled_lessons"] = int(series.aggregated_value or 0)
    return {k: {"scheduled_lessons": 0, **dict.fromkeys(INDICATORS), **v} for k, v in out.items()}


def _table(run: PackRun, prop: str, filters: list[dict[str, Any]] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(value, indicators) per value of a property, most scheduled lessons first."""
    found = _rows(run.trends(indicators_query([prop], filters)))
    return sorted(((str(k[0]), v) for k, v in found.items() if k), key=lambda kv: (-kv[1]["scheduled_lessons"],
                                                                                   kv[0]))


def _class_report(run: PackRun, class_id: str) -> ClassReport:
    if not _has_classes(run):
        raise PackError("class_id: this project's events carry no class group (group.class), so there is no class "
                        "report; send the learning events with their class as group `class`")
    mine = [{"property": CLASS, "op": "eq", "value": class_id}]
    whole = _rows(run.trends(indicators_query(None, mine))).get((), None)
    if whole is None or not whole["scheduled_lessons"]:
        raise PackError(f"class_id {class_id!r}: no lessons of this class in the period", 404)
    about = run.trends({"kind": "trends", "granularity": "month", "series": [{"metric": "scheduled_lessons"}],
                        "filters": mine, "breakdown": {"properties": [f"{CLASS}.name", BY_GROUP["course"],
                                                                      BY_GROUP["teacher"]], "limit": 1}})
    info = next((s.breakdown for s in about.series if s.breakdown and "$other" not in s.breakdown), None) or [None] * 3
    students = [StudentRow(student=name, **v) for name, v in _table(run, STUDENT, mine)]
    return ClassReport(class_id=class_id, name=info[0], course_id=info[1], teacher_id=info[2],
                       indicators=Indicators(**whole), students=sorted(students, key=lambda s: s.student))


def headline(run: PackRun) -> LearningIndicators:
    overall = _rows(run.trends(indicators_query(None))).get((), {"scheduled_lessons": 0, **dict.fromkeys(INDICATORS)})
    answered = by_key(run.trends(KNOWLEDGE), ("answers", "correct"))
    points = sorted((KnowledgePoint(knowledge_point=k[0], answers=int(v.get("answers", 0)),
                                    correct=int(v.get("correct", 0)),
                                    accuracy=ratio(v.get("correct", 0), v.get("answers", 0), 3))
                     for k, v in answered.items()), key=lambda p: (p.accuracy if p.accuracy is not None else 2,
                                                                   p.knowledge_point))
    grouped = _has_classes(run)
    class_id = run.params.get("class_id")
    courses: list[CourseRow] = []
    classes: list[ClassRow] = []
    teachers: list[TeacherRow] = []
    if not class_id:  # a class's report needs only its own numbers
        by_class = _table(run, BY_GROUP["course"]) if grouped else []
        # classes without a course_id property of their own: the lessons' own course_id
        courses = [CourseRow(course_id=c, **v) for c, v in (by_class or _table(run, "course_id"))]
        classes = [ClassRow(class_id=c, **v) for c, v in _table(run, CLASS)] if grouped else []
        teachers = [TeacherRow(teacher_id=c, **v) for c, v in _table(run, BY_GROUP["teacher"])] if grouped else []
    return LearningIndicators(
        **run.frame(NAME), card=Card(value=overall["attendance_rate"], unit="%",
                                     label="packs.card.learning_indicators"),
        **overall, courses=courses, classes=classes, teachers=teachers, knowledge_points=points,
        class_report=_class_report(run, str(class_id)) if class_id else None)


PACK = Pack(
    name=NAME, version=3, stage=Stage.learning, problem="7", headline=headline,
    needs=("lesson_scheduled", "lesson_attended", "lesson_completed", "quiz_answered", "homework_submitted"),
    metrics=METRICS, reports=REPORTS,
    dashboards=(DashboardPart("board", "学习指标 Learning indicators",
                              ("rates", "knowledge", "quiz", "courses"), refresh_seconds=None),),
)
