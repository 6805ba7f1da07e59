"""Masking walks only the values that come from user data: every kind's result, masked, shows no personal
value of the data (names, phones, mobile and WeChat identities), and keeps every label the query's author
wrote (a funnel step's name, a path node's event) as it was."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from edupulse.auth.masking import DEFAULT_PERSONAL, MASKER, PersonalMasker
from edupulse.queries.results import Provenance
from edupulse.queries.trends import EventSeries, TrendsResponse
from wire_cases import NOW, WireSchool, cases

RANGE = {"date_from": "2025-04-15", "date_to": "2025-05-31"}
MORE: dict[str, dict[str, Any]] = {
    "paths_by_name": {"kind": "paths", "start_event": "lead_created", "steps": 3, "date_range": RANGE,
                      "node_properties": {"lead_created": "person.name", "page_view": "platform"}},
    "attribution_by_name": {"kind": "attribution", "conversion": {"event": "order_paid"}, "date_range": RANGE,
                            "touches": [{"event": "lead_created", "channel": "person.name"},
                                        {"event": "page_view", "name": "web"}]},
    "retention_by_phone": {"kind": "retention", "start_event": {"event": "lead_created"},
                           "return_event": {"event": "page_view"}, "period": "week", "periods": 2,
                           "date_range": RANGE, "breakdown": {"properties": ["person.name", "person.grade"]}},
    "interval_by_name": {"kind": "interval", "start": {"event": "lead_created"}, "end": {"event": "call_connected"},
                         "date_range": RANGE, "breakdown": {"properties": ["person.name"], "limit": 5}},
    "ltv_by_name": {"kind": "ltv", "date_range": RANGE, "cohort": "month",
                    "breakdown": {"properties": ["person.name"], "limit": 5}},
    "persons_all": {"kind": "persons", "limit": 1000},
}
ALL = {**cases(), **MORE}
UNMASKED_KINDS = {"sql"}  # SQL needs personal:view: it is never masked (nor shown through share links)


@pytest.fixture(scope="module")
def personal_values(wire_school: WireSchool) -> set[str]:
    """Every value of a personal property or identity in the school's data, as text."""
    store, pid = wire_school.platform.store, wire_school.project.id
    values: set[str] = set()
    for (properties,) in store.query(f"SELECT CAST(properties AS VARCHAR) FROM persons WHERE project_id = {pid}").rows:
        for key, value in orjson.loads(properties or "{}").items():
            if key in DEFAULT_PERSONAL and not isinstance(value, dict | list):
                values.add(str(value))
    for id_type, value in store.query(f"SELECT id_type, id_value FROM identities WHERE project_id = {pid}").rows:
        if id_type in DEFAULT_PERSONAL:
            values.add(str(value))
    assert len(values) > 500  # names, phones, mobiles, WeChat ids of 300 learners
    return values


def strings(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set().union(*(strings(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(strings(v) for v in value)) if value else set()
    return {str(value)} if isinstance(value, str | int) and not isinstance(value, bool) else set()


@pytest.mark.parametrize("case", sorted(ALL))
def test_no_personal_value_is_left(wire_school: WireSchool, personal_values: set[str], case: str) -> None:
    query = ALL[case]
    if query["kind"] in UNMASKED_KINDS or case.startswith("doc_08"):  # doc_08: its person does not exist
        return
    answer = wire_school.service.run(wire_school.project, query, now=NOW)
    masked = answer.masked(MASKER).to_wire()
    assert not strings(masked) & personal_values, case
    # what is not user data stays as it was
    plain = answer.to_wire()
    for key in ("kind", "timezone", "sql", "date_from", "date_to", "buckets", "granularity", "total", "steps"):
        assert masked.get(key) == plain.get(key)


def test_funnel_step_names_are_the_author_s(wire_school: WireSchool) -> None:
    answer = wire_school.service.run(wire_school.project, cases()["funnel_breakdown_trend"], now=NOW)
    masked = answer.masked(MASKER).to_wire()
    names = [step["name"] for step in masked["results"][0]["steps"]]
    assert names == ["Sign up", "trial_booked", "paid"]  # not "S******"
    assert masked["results"] == answer.to_wire()["results"]  # broken down by channel: nothing personal


def test_path_nodes_and_transitions_still_link(wire_school: WireSchool) -> None:
    plain = wire_school.service.run(wire_school.project, cases()["paths_start_properties"], now=NOW)
    assert plain.masked(MASKER).to_wire() == plain.to_wire()  # events and platforms are not personal
    by_name = wire_school.service.run(wire_school.project, MORE["paths_by_name"], now=NOW).masked(MASKER).to_wire()
    names = {node["name"] for node in by_name["nodes"]}
    first = [node["label"] for node in by_name["nodes"] if node["step"] == 1 and node["label"] != "$other"]
    assert first
    assert all(label.startswith("lead_created:") and "*" in label for label in first)
    assert all(t["source"] in names for t in by_name["transitions"])
    assert all(t["target"] in names or t["target"].endswith(":$drop_off") for t in by_name["transitions"])
    assert all("*" not in n["label"] for n in by_name["nodes"] if not n["label"].startswith("lead_created:"))


def test_channels_from_a_personal_property_are_masked(wire_school: WireSchool) -> None:
    masked = wire_school.service.run(wire_school.project, MORE["attribution_by_name"], now=NOW).masked(MASKER)
    channels = [c.channel for c in masked.result.channels]
    assert "web" in channels  # a fixed name, not data
    assert all(c in ("web", "(none)", "$other") or "*" in c for c in channels)


def test_identities_of_personal_types_are_masked(wire_school: WireSchool) -> None:
    masked = wire_school.service.run(wire_school.project, {"kind": "person", "person_id": 21}, now=NOW)
    shown = masked.masked(MASKER).result.person
    kinds = {i.type: i.value for i in shown.identities}
    assert "****" in kinds["mobile"]
    assert kinds["crm_lead_id"].startswith("L")  # not personal
    assert "*" in shown.properties["name"]
    assert "*" not in shown.properties["city"]


def test_only_marked_fields_are_walked() -> None:
    """The defect of masking every key called like a personal property: a series labelled "name"..."""
    result = TrendsResponse(date_from="2025-05-01", date_to="2025-05-01", granularity="day", buckets=["2025-05-01"],
                            series=[EventSeries(index=0, label="name", event="name", math="total",
                                                breakdown=["王小明", "G5"], data=[1], aggregated_value=1)])
    masked = result.from_data(Provenance(breakdown=("person.name", "person.grade"))).masked(PersonalMasker())
    series = masked.series[0]
    assert (series.label, series.event, series.breakdown) == ("name", "name", ["王**", "G5"])
