"""Learning indicators per course, class, teacher and student, checked against a direct count over the raw events
of the simulated school (the truth file has the whole school's attendance, not each class's): a scheduled lesson
of a student is attended, completed or has its homework when the student sent that event with the same
lesson_id; quiz accuracy is correct answers / answers. A class's report has its students, and bad class ids are
refused with a reason."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import pytest

from edupulse.packs.headline import PackError
from pack_school import NOW

OUTCOMES = {"lesson_attended": "attendance_rate", "lesson_completed": "completion_rate",
            "homework_submitted": "homework_rate"}


def _events(school: Any) -> list[tuple[str, int, dict[str, Any], str | None]]:
    """(event, person after merges, {lesson_id, correct}, class) of the learning events."""
    slot = school.platform.meta.group_types(school.project.id)["class"]
    typed = dict(school.platform.store.typed_properties())

    def read(name: str) -> str:  # a typed property has its own column, the others are in the JSON
        return f"CAST(e.prop_{name} AS VARCHAR)" if name in typed else f"json_extract_string(e.properties, '$.{name}')"

    rows = school.platform.store.query(
        f"SELECT e.event, coalesce(o.person_id, e.person_id), {read('lesson_id')}, {read('correct')}, e.group_{slot} "
        "FROM events e LEFT JOIN person_overrides o ON o.project_id = e.project_id AND o.old_person_id = e.person_id "
        "WHERE e.project_id = ? AND e.event IN ('lesson_scheduled', 'lesson_attended', 'lesson_completed', "
        "'homework_submitted', 'quiz_answered')", [school.project.id]).rows
    return [(event, int(person), {"lesson_id": lesson, "correct": str(correct).lower() == "true"}, group)
            for event, person, lesson, correct, group in rows]


def _classes(school: Any) -> dict[str, dict[str, Any]]:
    rows = school.platform.store.query(
        "SELECT entity_key, properties FROM entities WHERE project_id = ? AND kind = 'group' AND entity_type = 'class'",
        [school.project.id]).rows
    return {key: json.loads(props) if isinstance(props, str) else dict(props) for key, props in rows}


def expected(school: Any, dimension: str) -> dict[str, dict[str, Any]]:
    """Per course, class or teacher (of the class the events carry): the indicators counted in plain Python."""
    classes = _classes(school)

    def key(group: str | None) -> str | None:
        if group is None:
            return None
        return group if dimension == "class" else classes[group][f"{dimension}_id"]

    events = _events(school)
    done: dict[str, set[tuple[int, str]]] = {name: set() for name in OUTCOMES}
    for event, person, props, _ in events:
        if event in done:
            done[event].add((person, str(props.get("lesson_id"))))
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for event, person, props, group in events:
        mine = counts[key(group) or "$none"]
        if event == "lesson_scheduled":
            mine["scheduled"] += 1
            for outcome in OUTCOMES:
                mine[outcome] += (person, str(props.get("lesson_id"))) in done[outcome]
        elif event == "quiz_answered":
            mine["answers"] += 1
            mine["correct"] += props.get("correct") is True
    out = {}
    for name, c in counts.items():
        out[name] = {"scheduled_lessons": c["scheduled"],
                     **{metric: c[event] / c["scheduled"] if c["scheduled"] else None
                        for event, metric in OUTCOMES.items()},
                     "quiz_accuracy": c["correct"] / c["answers"] if c["answers"] else None}
    return out


@pytest.mark.parametrize(("dimension", "rows", "field"), [("course", "courses", "course_id"),
                                                          ("class", "classes", "class_id"),
                                                          ("teacher", "teachers", "teacher_id")])
def test_indicators_per_course_class_and_teacher_equal_a_direct_count(school: Any, dimension: str, rows: str,
                                                                      field: str) -> None:
    found = school.packs.headline(school.project, "learning_indicators", date_range="all", now=NOW)
    truth = expected(school, dimension)
    shown = getattr(found, rows)
    assert {getattr(r, field) for r in shown} == {k for k in truth if k != "$none"}
    for row in shown:
        mine = truth[getattr(row, field)]
        assert row.scheduled_lessons == mine["scheduled_lessons"]
        for metric in ("attendance_rate", "completion_rate", "homework_rate", "quiz_accuracy"):
            value = getattr(row, metric)
            assert value == (None if mine[metric] is None else pytest.approx(mine[metric], abs=1e-6)), (row, metric)


def test_the_whole_school_equals_the_truth_and_the_direct_count(school: Any) -> None:
    found = school.packs.headline(school.project, "learning_indicators", date_range="all", now=NOW)
    learning = school.truth["learning"]
    assert found.attendance_rate == pytest.approx(learning["attendance_rate"], abs=5e-4)
    answers = sum(k["answers"] for k in learning["knowledge_points"])
    correct = sum(k["correct"] for k in learning["knowledge_points"])
    assert found.quiz_accuracy == pytest.approx(correct / answers, abs=1e-6)
    weighted = sum((c.homework_rate or 0) * c.scheduled_lessons for c in found.courses) / found.scheduled_lessons
    assert found.homework_rate == pytest.approx(weighted, abs=1e-5)


def test_a_class_report_lists_its_students(school: Any) -> None:
    whole = school.packs.headline(school.project, "learning_indicators", date_range="all", now=NOW)
    first = whole.classes[0]
    found = school.packs.headline(school.project, "learning_indicators", date_range="all", now=NOW,
                                  class_id=first.class_id)
    report = found.class_report
    assert report is not None
    assert found.courses == found.classes == found.teachers == []
    assert report.class_id == first.class_id
    assert report.indicators.model_dump() == {k: v for k, v in first.model_dump().items() if k != "class_id"}
    classes = _classes(school)
    assert report.course_id == classes[first.class_id]["course_id"]
    assert report.teacher_id == classes[first.class_id]["teacher_id"]
    assert report.name == classes[first.class_id]["name"]
    assert report.students
    assert sum(s.scheduled_lessons for s in report.students) == first.scheduled_lessons
    weighted = sum((s.attendance_rate or 0) * s.scheduled_lessons for s in report.students) / first.scheduled_lessons
    assert weighted == pytest.approx(first.attendance_rate, abs=1e-5)
    assert [s.student for s in report.students] == sorted(s.student for s in report.students)


def test_a_class_without_lessons_is_refused(school: Any) -> None:
    with pytest.raises(PackError, match="no lessons of this class") as refused:
        school.packs.headline(school.project, "learning_indicators", date_range="all", now=NOW, class_id="nope")
    assert refused.value.status == 404
