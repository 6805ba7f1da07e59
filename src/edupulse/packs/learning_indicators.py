"""Pack 7, learning indicators (学习指标体系): attendance and completion rates (the catalogue's definitions: per
student and scheduled lesson) overall and per course, quiz accuracy and homework, and knowledge points ranked
by difficulty (lowest accuracy first), for the academic supervisor."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from edupulse.packs.headline import Card, Headline, PackRun, by_key, ratio
from edupulse.packs.spec import MAX_SERIES, DashboardPart, Pack, ReportPart, Stage

NAME = "learning_indicators"
CORRECT = [{"property": "correct", "op": "eq", "value": True}]
RATES = {"kind": "trends", "granularity": "week", "date_range": {"date_from": "-30d"},
         "series": [{"metric": "attendance_rate"}, {"metric": "completion_rate"}]}
KNOWLEDGE = {"kind": "trends", "granularity": "month", "date_range": {"date_from": "-30d"},
             "series": [{"event": "quiz_answered"}, {"event": "quiz_answered", "filters": CORRECT}],
             "breakdown": {"properties": ["knowledge_point"], "limit": 100}}
COURSES = {"kind": "trends", "granularity": "month", "date_range": {"date_from": "-30d"},
           "series": [{"event": "lesson_scheduled"}, {"event": "homework_submitted"}],
           "breakdown": {"properties": ["course_id"], "limit": 100}}
QUIZ = {"kind": "trends", "granularity": "week", "date_range": {"date_from": "-30d"},
        "series": [{"event": "quiz_answered"}, {"event": "quiz_answered", "filters": CORRECT}],
        "formula": "B / A"}

REPORTS = (
    ReportPart("rates", "到课率与完课率 Attendance and completion rates", RATES, width=12),
    ReportPart("knowledge", "知识点答题（全部 / 答对） Knowledge points: answers and correct answers", KNOWLEDGE,
               view={"chart": "bar"}, width=12),
    ReportPart("quiz", "答题正确率 Quiz accuracy", QUIZ),
    ReportPart("courses", "各课程排课与作业 Lessons scheduled and homework by course", COURSES, view={"chart": "bar"}),
)


class CourseRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    course_id: str
    scheduled_lessons: int
    attendance_rate: float | None
    completion_rate: float | None
    homework_submitted: int


class KnowledgePoint(BaseModel):
    model_config = ConfigDict(extra="forbid")
    knowledge_point: str
    answers: int
    correct: int
    accuracy: float | None


class LearningIndicators(Headline):
    attendance_rate: float | None
    completion_rate: float | None
    quiz_accuracy: float | None
    homework_submitted: int
    courses: list[CourseRow]
    knowledge_points: list[KnowledgePoint]


def _per_course(run: PackRun, metric: str, courses: list[str]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for start in range(0, len(courses), MAX_SERIES):
        chunk = courses[start:start + MAX_SERIES]
        series: list[dict[str, Any]] = [{"metric": metric, "name": c,
                                         "filters": [{"property": "course_id", "op": "eq", "value": c}]}
                                        for c in chunk]
        result = run.trends({**RATES, "granularity": "month", "series": series})
        out.update({c: ratio(s.aggregated_value, 100) for c, s in zip(chunk, result.series, strict=True)})
    return out


def headline(run: PackRun) -> LearningIndicators:
    overall = [ratio(s.aggregated_value, 100) for s in run.trends({**RATES, "granularity": "month"}).series]
    answered = by_key(run.trends(KNOWLEDGE), ("answers", "correct"))
    points = sorted((KnowledgePoint(knowledge_point=k[0], answers=int(v.get("answers", 0)),
                                    correct=int(v.get("correct", 0)),
                                    accuracy=ratio(v.get("correct", 0), v.get("answers", 0), 3))
                     for k, v in answered.items()), key=lambda p: (p.accuracy if p.accuracy is not None else 2,
                                                                   p.knowledge_point))
    courses = by_key(run.trends(COURSES), ("scheduled", "homework"))
    names = sorted(k[0] for k in courses)
    attendance, completion = _per_course(run, "attendance_rate", names), _per_course(run, "completion_rate", names)
    rows = [CourseRow(course_id=c, scheduled_lessons=int(courses[(c,)].get("scheduled", 0)),
                      attendance_rate=attendance[c], completion_rate=completion[c],
                      homework_submitted=int(courses[(c,)].get("homework", 0))) for c in names]
    answers, correct = sum(p.answers for p in points), sum(p.correct for p in points)
    return LearningIndicators(
        **run.frame(NAME), card=Card(value=overall[0], unit="%", label="packs.card.learning_indicators"),
        attendance_rate=overall[0], completion_rate=overall[1], quiz_accuracy=ratio(correct, answers, 6),
        homework_submitted=sum(r.homework_submitted for r in rows), courses=rows, knowledge_points=points)


PACK = Pack(
    name=NAME, version=1, stage=Stage.learning, problem="7", headline=headline,
    needs=("lesson_scheduled", "lesson_attended", "lesson_completed", "quiz_answered", "homework_submitted"),
    reports=REPORTS,
    dashboards=(DashboardPart("board", "学习指标 Learning indicators", ("rates", "knowledge", "quiz", "courses"),
                              refresh_seconds=None),),
)
