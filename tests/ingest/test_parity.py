"""Parity of the collection protocols: one scripted story of a learner (an anonymous visitor views pages with utm,
signs up, sets profile properties, enrolls, attends lessons, answers a quiz, pays an order) is sent through every
protocol into its own project, and the resulting events, identities and person properties are compared.

Each protocol is an adapter: the story steps it can express (`steps`) and `send(story)`. A protocol that cannot
express the whole story (xAPI has no page views, sign-ups or profiles) is compared with the native protocol
sending the same part of the story. To add a protocol, add an adapter to ADAPTERS.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import importlib.util
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
import pytest

from conftest import ProjectKeys, Server, ServerFactory, create_project
from edupulse.meta.db import MetadataStore
from edupulse.sdk import EduPulse
from tracker_support import ARGS, CHROMIUM, SchoolSite

T0 = dt.datetime(2026, 9, 1, 10, 0, tzinfo=dt.UTC)
SITE = "https://school.example"
COURSE = f"{SITE}/course/math-g5"
ALL_STEPS = frozenset({"page", "signup", "profile", "profile_once", "enroll", "attend", "answer", "pay"})
# Protocols name some things their own way: their page views are page views; the events they record for an
# identify call or a sign-up are bookkeeping of the protocol, not part of the learner's activity.
SAME_EVENT = {"$pageview": "page_view"}
BOOKKEEPING = frozenset({"$SignUp", "$identify", "$create_alias", "$BindID"})
# The standard properties compared; protocol-specific extras (source_system, xapi_*, title...) are not.
COMPARED = ("url", "utm_source", "utm_medium", "utm_campaign", "course_id", "lesson_id", "duration_s", "question_id",
            "correct", "order_id", "amount", "order_type")


@dataclass(frozen=True)
class Step:
    kind: str
    minute: int
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def time(self) -> str:
        return (T0 + dt.timedelta(minutes=self.minute)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


VISITOR, LEARNER = "v-7d1c", "stu-1001"
UTM = {"utm_source": "douyin", "utm_medium": "feed", "utm_campaign": "spring"}
STORY = (
    Step("page", 0, {"url": f"{SITE}/landing?utm_source=douyin&utm_medium=feed&utm_campaign=spring", **UTM}),
    Step("page", 1, {"url": f"{SITE}/course/math-g5", **UTM}),
    Step("signup", 2),
    Step("profile", 3, {"grade": "G5", "city": "Hangzhou"}),
    Step("profile_once", 3, {"first_channel": "douyin"}),
    Step("enroll", 4, {"course_id": COURSE}),
    Step("attend", 60, {"lesson_id": f"{COURSE}/lesson/1", "course_id": COURSE, "duration_s": 2700}),
    Step("attend", 120, {"lesson_id": f"{COURSE}/lesson/2", "course_id": COURSE, "duration_s": 1800}),
    Step("answer", 125, {"question_id": f"{COURSE}/quiz/1/q/3", "course_id": COURSE, "correct": True}),
    Step("pay", 130, {"order_id": "O-88127", "amount": 1999, "course_id": COURSE, "order_type": "first"}),
)
EVENTS = {"enroll": "course_enrolled", "attend": "lesson_attended", "answer": "quiz_answered", "pay": "order_paid",
          "page": "page_view"}


class Adapter:
    """Sends the scripted story through one protocol."""

    name: ClassVar[str]
    steps: ClassVar[frozenset[str]] = ALL_STEPS

    def send(self, server: Server, keys: ProjectKeys, story: list[Step]) -> None:
        raise NotImplementedError

    def unavailable(self) -> str | None:
        """Why this protocol cannot be tested here (None: it can)."""
        return None


def native_records(story: list[Step]) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    signed_up = all(step.kind != "signup" for step in story)  # without a sign-up the learner is known by login
    for step in story:
        who = {"distinct_id": LEARNER, "distinct_id_type": "login_id"} if signed_up else {"distinct_id": VISITOR}
        if step.kind == "signup":
            signed_up = True
            records.append({"type": "identify", "distinct_id": LEARNER, "anonymous_id": VISITOR, "time": step.time})
        elif step.kind in ("profile", "profile_once"):
            kind = "profile_set" if step.kind == "profile" else "profile_set_once"
            records.append({"type": kind, **who, "time": step.time, "properties": step.data})
        else:
            records.append({"type": "track", "event": EVENTS[step.kind], **who, "time": step.time,
                            "properties": step.data})
    return records


class Native(Adapter):
    name = "native"

    def send(self, server: Server, keys: ProjectKeys, story: list[Step]) -> None:
        response = httpx.post(f"{server.url}/api/v1/ingest", json={"batch": native_records(story)},
                              headers={"Authorization": f"Bearer {keys.write_key}"}, timeout=30)
        assert response.status_code == 200, response.text
        assert response.json()["rejected"] == 0, response.text


class PythonSDK(Adapter):
    name = "python-sdk"

    def send(self, server: Server, keys: ProjectKeys, story: list[Step]) -> None:
        with EduPulse(keys.write_key, server.url, batch_size=3) as client:
            user: dict[str, Any] = {}
            distinct = VISITOR
            for step in story:
                if step.kind == "signup":
                    client.identify(LEARNER, anonymous_id=VISITOR, time=step.time)
                    distinct, user = LEARNER, {"distinct_id_type": "login_id"}
                elif step.kind == "profile":
                    client.profile_set(distinct, step.data, time=step.time, **user)
                elif step.kind == "profile_once":
                    client.profile_set_once(distinct, step.data, time=step.time, **user)
                else:
                    client.track(distinct, EVENTS[step.kind], step.data, time=step.time, **user)
            assert client.flush(timeout=30)
            assert (client.stats.sent, client.stats.failed) == (len(story), 0)


class Xapi(Adapter):
    """An LMS: the learner is its account; lessons, quizzes and courses are activities."""

    name = "xapi"
    steps = frozenset({"enroll", "attend", "answer"})
    VERBS: ClassVar[dict[str, str]] = {"enroll": "registered", "attend": "attended", "answer": "answered"}

    def statement(self, step: Step) -> dict[str, Any]:
        data = step.data
        activity = data.get("lesson_id") or data.get("question_id") or data["course_id"]
        statement: dict[str, Any] = {
            "actor": {"objectType": "Agent", "account": {"homePage": "https://lms.school.example", "name": LEARNER}},
            "verb": {"id": "http://adlnet.gov/expapi/verbs/" + self.VERBS[step.kind]},
            "object": {"objectType": "Activity", "id": activity},
            "timestamp": step.time,
        }
        if step.kind != "enroll":
            statement["context"] = {"contextActivities": {"parent": [{"id": data["course_id"]}]}}
        if "duration_s" in data:
            statement["result"] = {"duration": f"PT{data['duration_s']}S"}
        if "correct" in data:
            statement["result"] = {"success": data["correct"], "response": "B"}
        return statement

    def send(self, server: Server, keys: ProjectKeys, story: list[Step]) -> None:
        response = httpx.post(f"{server.url}/xapi/statements", json=[self.statement(s) for s in story], timeout=30,
                              headers={"X-Experience-API-Version": "1.0.3"}, auth=(keys.write_key, ""))
        assert response.status_code == 200, response.text


class BrowserTracker(Adapter):
    """/static/edupulse.js in Chromium, on a page of the school's own site; the visitor's id is the page's."""

    name = "browser"
    CALLS: ClassVar[dict[str, str]] = {
        "page": "edupulse.page(data, {time})", "signup": "edupulse.identify(login, null, {time})",
        "profile": "edupulse.setProfile(data, {time})", "profile_once": "edupulse.setProfileOnce(data, {time})",
    }

    def unavailable(self) -> str | None:
        if not CHROMIUM.exists():
            return f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            return "the playwright package is not installed"
        return None

    def send(self, server: Server, keys: ProjectKeys, story: list[Step]) -> None:
        from playwright.sync_api import sync_playwright

        site = SchoolSite(server.url, keys.write_key, {"story": f", autoPageview: false, anonymousId: {VISITOR!r}"})
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
                page = browser.new_page()
                page.goto(f"{site.url}/story")
                for step in story:
                    call = self.CALLS.get(step.kind, "edupulse.track(event, data, {time})")
                    page.evaluate(f"([event, data, time, login]) => {call}",
                                  [EVENTS.get(step.kind), step.data, step.time, LEARNER])
                page.evaluate("edupulse.flush()")
                page.wait_for_function("edupulse.stats().queued === 0 && edupulse.stats().sent > 0", timeout=30_000)
                browser.close()
        finally:
            site.close()


def millis(step: Step) -> int:
    return int((T0 + dt.timedelta(minutes=step.minute)).timestamp() * 1000)


class Compat(Adapter):
    """A protocol of another analytics product, present once its endpoints are part of the server."""

    module: ClassVar[str]

    def unavailable(self) -> str | None:
        if importlib.util.find_spec(f"edupulse.ingest.{self.module}") is None:
            return f"the {self.name} endpoints are not part of this server yet"
        return None

    def post(self, url: str, ok: Callable[[Any], bool], **kwargs: Any) -> None:
        response = httpx.post(url, timeout=30, **kwargs)
        assert response.status_code == 200, response.text
        assert ok(response.json()), response.text


class Sensors(Compat):
    """Sensors Analytics records (data_list, gzip + base64) to /sa: $pageview, track_signup, profile_*."""

    name, module = "sensors", "sensors"

    def records(self, story: list[Step]) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        login = False
        for step in story:
            who = {"distinct_id": LEARNER if login else VISITOR}
            flag = {"$is_login_id": True} if login else {}
            base = {**who, "time": millis(step), "_track_id": uuid.uuid5(uuid.NAMESPACE_URL, repr(step)).int % 2**31}
            if step.kind == "page":
                props = {"$url": step.data["url"], **{f"${k}": v for k, v in step.data.items() if k != "url"}}
                records.append({**base, "type": "track", "event": "$pageview", "properties": {**props, **flag}})
            elif step.kind == "signup":
                login = True
                records.append({**base, "type": "track_signup", "event": "$SignUp", "distinct_id": LEARNER,
                                "original_id": VISITOR, "properties": {}})
            elif step.kind in ("profile", "profile_once"):
                kind = "profile_set" if step.kind == "profile" else "profile_set_once"
                records.append({**base, "type": kind, "properties": {**step.data, **flag}})
            else:
                props = {**step.data, **flag}
                records.append({**base, "type": "track", "event": EVENTS[step.kind], "properties": props})
        return records

    def send(self, server: Server, keys: ProjectKeys, story: list[Step]) -> None:
        body = base64.b64encode(gzip.compress(json.dumps(self.records(story)).encode())).decode()
        self.post(f"{server.url}/sa?token={keys.write_key}", lambda r: r.get("rejected", 0) == 0,
                  data={"data_list": body, "gzip": "1"})


class PostHog(Compat):
    """PostHog events to /batch/: $pageview, $identify, $set, $set_once."""

    name, module = "posthog", "posthog"

    def event(self, step: Step, login: bool) -> dict[str, Any]:
        who = LEARNER if login else VISITOR
        base = {"distinct_id": who, "timestamp": step.time, "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, repr(step)))}
        if step.kind == "page":
            props = {"$current_url": step.data["url"], **{k: v for k, v in step.data.items() if k != "url"}}
            return {**base, "event": "$pageview", "properties": props}
        if step.kind == "signup":
            return {**base, "event": "$identify", "distinct_id": LEARNER, "properties": {"$anon_distinct_id": VISITOR}}
        if step.kind in ("profile", "profile_once"):
            kind = "$set" if step.kind == "profile" else "$set_once"
            return {**base, "event": kind, "properties": {kind: step.data}}
        return {**base, "event": EVENTS[step.kind], "properties": step.data}

    def send(self, server: Server, keys: ProjectKeys, story: list[Step]) -> None:
        signup = next((i for i, s in enumerate(story) if s.kind == "signup"), len(story))
        batch = [self.event(step, i >= signup) for i, step in enumerate(story)]
        self.post(f"{server.url}/batch/", lambda r: r.get("rejected", 0) == 0,
                  json={"api_key": keys.write_key, "batch": batch})


class Segment(Compat):
    """Segment messages to /v1/batch: page, identify (with and without traits), track. Segment has no
    set-once, so that step is left out."""

    name, module = "segment", "segment"
    steps = ALL_STEPS - {"profile_once"}

    def message(self, step: Step, login: bool) -> dict[str, Any]:
        who = {"userId": LEARNER} if login else {"anonymousId": VISITOR}
        base = {**who, "timestamp": step.time, "messageId": str(uuid.uuid5(uuid.NAMESPACE_URL, repr(step)))}
        if step.kind == "page":
            campaign = {"source": step.data["utm_source"], "medium": step.data["utm_medium"],
                        "name": step.data["utm_campaign"]}
            return {**base, "type": "page", "properties": {"url": step.data["url"]},
                    "context": {"campaign": campaign, "page": {"url": step.data["url"]}}}
        if step.kind == "signup":
            return {**base, "type": "identify", "userId": LEARNER, "anonymousId": VISITOR}
        if step.kind == "profile":
            return {**base, "type": "identify", "traits": step.data}
        return {**base, "type": "track", "event": EVENTS[step.kind], "properties": step.data}

    def send(self, server: Server, keys: ProjectKeys, story: list[Step]) -> None:
        signup = next((i for i, s in enumerate(story) if s.kind == "signup"), len(story))
        batch = [self.message(step, i >= signup) for i, step in enumerate(story)]
        self.post(f"{server.url}/v1/batch", lambda r: r.get("rejected", 0) == 0, json={"batch": batch},
                  auth=(keys.write_key, ""))


ADAPTERS: list[Adapter] = [Native(), PythonSDK(), Xapi(), BrowserTracker(), Sensors(), PostHog(), Segment()]


def person_label(identities: list[tuple[str, str]]) -> str:
    """A person named by its login ID, else by its identities (person ids differ between projects)."""
    logins = [value for kind, value in identities if kind == "login_id"]
    return logins[0] if logins else ",".join(sorted(f"{k}:{v}" for k, v in identities))


def outcome(server: Server, project_id: int) -> dict[str, Any]:
    """Events, persons (by identities) and person properties of a project, normalized for comparison."""
    resolve = ("COALESCE((SELECT o.person_id FROM person_overrides o WHERE o.project_id = {t}.project_id "
               "AND o.old_person_id = {t}.person_id), {t}.person_id)")
    people: dict[int, list[tuple[str, str]]] = {}
    for kind, value, person in server.query(
            f"SELECT id_type, id_value, {resolve.format(t='i')} FROM identities i WHERE project_id = ?", [project_id]):
        people.setdefault(person, []).append((kind, value))
    for person, ids in people.items():  # PostHog-like protocols also keep a login ID as an anonymous distinct ID
        people[person] = [(k, v) for k, v in ids if not (k == "anonymous_id" and ("login_id", v) in ids)]
    columns = ", ".join(f"prop_{name}" for name in COMPARED)
    events = sorted(
        (SAME_EVENT.get(event, event), time.isoformat(), person_label(people[person]),
         tuple((name, value) for name, value in zip(COMPARED, values, strict=True) if value is not None))
        for event, time, person, *values in server.query(
            f"SELECT event, time, resolved_person_id, {columns} FROM events_resolved WHERE project_id = ?",
            [project_id]) if event not in BOOKKEEPING)
    properties = {person_label(people[person]): json.loads(props) for person, props in server.query(
        f"SELECT {resolve.format(t='p')}, properties FROM persons p WHERE project_id = ?", [project_id])
        if props and json.loads(props)}
    return {"events": events, "persons": sorted(sorted(ids) for ids in people.values()), "properties": properties}


def project_ids(server: Server) -> dict[str, int]:
    meta = MetadataStore(server.settings.resolved_metadata_url)
    try:
        return {p.name: p.id for p in meta.projects()}
    finally:
        meta.close()


def test_every_protocol_tells_the_same_story(server_factory: ServerFactory, settings: Any) -> None:
    plans: list[tuple[str, Callable[[Server, ProjectKeys], None]]] = []
    adapters = [adapter for adapter in ADAPTERS if adapter.unavailable() is None]
    for adapter in adapters:
        story = [step for step in STORY if step.kind in adapter.steps]
        plans.append((adapter.name, lambda s, k, a=adapter, st=story: a.send(s, k, st)))
        if adapter.steps != ALL_STEPS:  # the reference: the native protocol sending the same part of the story
            plans.append((f"native for {adapter.name}", lambda s, k, st=story: Native().send(s, k, st)))
    keys = {name: create_project(settings, name) for name, _ in plans}
    server = server_factory().start()
    for name, send in plans:
        send(server, keys[name])
    server.stop()
    ids = project_ids(server)
    results = {name: outcome(server, ids[name]) for name, _ in plans}

    full = results["native"]
    assert len(full["events"]) == 7
    assert full["persons"] == [[("anonymous_id", VISITOR), ("login_id", LEARNER)]]
    assert {e[2] for e in full["events"]} == {LEARNER}  # the anonymous page views belong to the learner
    assert full["properties"] == {LEARNER: {"grade": "G5", "city": "Hangzhou", "first_channel": "douyin"}}
    for adapter in adapters:
        reference = full if adapter.steps == ALL_STEPS else results[f"native for {adapter.name}"]
        assert results[adapter.name] == reference, adapter.name
    assert results["xapi"]["events"], "the xAPI part of the story is not empty"


@pytest.mark.parametrize("adapter", ADAPTERS, ids=[a.name for a in ADAPTERS])
def test_adapters_declare_known_steps_and_run_here(adapter: Adapter) -> None:
    assert adapter.steps <= ALL_STEPS
    assert {step.kind for step in STORY} == ALL_STEPS
    reason = adapter.unavailable()
    if reason:
        pytest.skip(f"{adapter.name} is left out of the parity test: {reason}")
