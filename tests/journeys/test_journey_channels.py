"""Messages through every channel to real receivers on loopback: email through SMTP (aiosmtpd) in the person's
language with the same Message-ID on a repeat, DingTalk robots signed as DingTalk documents, WeCom robots and
their rate-limit answer, advisor tasks by round robin and by capacity with an inbox per advisor, and person
properties set through ingestion."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import threading
from collections.abc import Iterator
from email import message_from_bytes
from email.header import decode_header, make_header
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from journey_app import PASSWORD, JourneyApp, build
from receivers import receiver

from conftest import free_port
from edupulse.auth.permissions import Role, Scope


@pytest.fixture
def ja(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JourneyApp]:
    yield from build(tmp_path_factory.mktemp("channels"))


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def run_scheduled(ja: JourneyApp, steps: list[dict[str, Any]], name: str) -> int:
    zone = ZoneInfo(ja.project.timezone)
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    local = now.astimezone(zone)
    spec = {"name": name, "holdout": 0, "steps": steps,
            "trigger": {"schedule": {"every": "once", "date": local.date().isoformat(), "at": local.strftime("%H:%M")},
                        "audience": {"segment": "missed"}}}
    made = ja.client.post("/api/v1/journeys", json=spec, headers=ja.as_("analyst"))
    assert made.status_code == 201, made.text
    jid = int(made.json()["id"])
    assert ja.client.post(f"/api/v1/journeys/{jid}/start", headers=ja.as_("analyst")).status_code == 200
    assert ja.runtime.schedule_job().run(now + dt.timedelta(seconds=5)) == {jid: 4}
    ja.runtime.worker.tick(now + dt.timedelta(seconds=5))
    return jid


def channel(ja: JourneyApp, name: str, body: dict[str, Any]) -> None:
    answer = ja.client.put(f"/api/v1/journey-channels/{name}", headers=ja.as_("admin"), json=body)
    assert answer.status_code == 200, answer.text


def deliveries(ja: JourneyApp, jid: int) -> list[dict[str, Any]]:
    return ja.client.get(f"/api/v1/journeys/{jid}/deliveries", headers=ja.as_("viewer")).json()["deliveries"]


def test_email_in_the_persons_language(ja: JourneyApp, smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    channel(ja, "school-mail", {"kind": "smtp", "config": {"host": "127.0.0.1", "port": port,
                                                            "sender": "recall@school.example"}})
    jid = run_scheduled(ja, [{"action": "email", "channel": "school-mail",
                              "subject": {"zh": "{{person.login_id}}，我们想念你",
                                          "en": "We miss you, {{person.login_id}}"},
                              "text": {"zh": "你的年级：{{person.grade}}", "en": "Your grade: {{person.grade}}"}}],
                        "mail")
    got = {}
    for recipients, raw in inbox.messages:
        parsed = message_from_bytes(raw)
        got[recipients[0]] = (str(make_header(decode_header(parsed["Subject"]))), parsed["Message-ID"],
                              parsed.get_payload(decode=True).decode().strip())
    assert sorted(got) == ["s1@family.example", "s2@family.example", "s3@family.example", "s4@family.example"]
    assert got["s1@family.example"][0] == "s1，我们想念你"
    assert got["s2@family.example"][0] == "We miss you, s2"
    assert got["s2@family.example"][2] == "Your grade: 3"
    keys = {d["person"]: d["idempotency_key"] for d in deliveries(ja, jid)}
    assert got["s3@family.example"][1] == f"<{keys['login_id:s3']}@edupulse>"
    assert all(d["status"] == "sent" for d in deliveries(ja, jid))


def test_dingtalk_robot_is_signed(ja: JourneyApp) -> None:
    with receiver(reply=b'{"errcode": 0, "errmsg": "ok"}') as rx:
        channel(ja, "ding", {"kind": "dingtalk", "secrets": {"webhook_url": rx.url + "/robot/send?access_token=t0k",
                                                             "signing_secret": "SEC123"}})
        run_scheduled(ja, [{"if": {"property": "person.grade", "op": "gte", "value": 5},
                            "then": [{"action": "dingtalk", "channel": "ding", "format": "markdown",
                                      "title": "Recall", "text": "### {{person.login_id}} missed a lesson",
                                      "at_mobiles": ["13800000000"]}]}], "ding")
        assert len(rx.requests) == 2
        for got in rx.requests:
            query = parse_qs(urlsplit(got.path).query)
            assert query["access_token"] == ["t0k"]
            stamp = query["timestamp"][0]
            expected = base64.b64encode(hmac.new(b"SEC123", f"{stamp}\nSEC123".encode(), hashlib.sha256).digest())
            assert query["sign"] == [expected.decode()]
            body = got.json()
            assert body["msgtype"] == "markdown"
            assert body["markdown"]["title"] == "Recall"
            assert body["at"] == {"atMobiles": ["13800000000"], "isAtAll": False}
        assert sorted(r.json()["markdown"]["text"] for r in rx.requests) == ["### s1 missed a lesson",
                                                                              "### s3 missed a lesson"]


def test_wecom_robot_and_its_rate_limit(ja: JourneyApp) -> None:
    with receiver(reply=b'{"errcode": 45009, "errmsg": "api freq out of limit"}') as rx:
        channel(ja, "wecom", {"kind": "wecom", "secrets": {"webhook_url": rx.url + "/cgi-bin/webhook/send?key=k1"}})
        jid = run_scheduled(ja, [{"action": "wecom", "channel": "wecom", "text": "{{person.login_id}} 缺课"}],
                            "wecom")
        assert sorted(r.json()["text"]["content"] for r in rx.requests) == ["s1 缺课", "s2 缺课", "s3 缺课",
                                                                            "s4 缺课"]
        assert all(r.json()["msgtype"] == "text" for r in rx.requests)
    assert {d["status"] for d in deliveries(ja, jid)} == {"failed"}  # retried later, not dropped
    assert "45009" in deliveries(ja, jid)[0]["reason"]


def test_advisor_tasks_round_robin_and_inbox(ja: JourneyApp) -> None:
    accounts = ja.platform.meta.accounts
    second = accounts.create_user("advisor2@school.example", PASSWORD)
    accounts.set_role(second.id, ja.project.id, Role.advisor)
    ja.keys["advisor2"] = accounts.create_key(second.id, "tests", frozenset(Scope))[0]
    run_scheduled(ja, [{"action": "task", "title": {"zh": "回访 {{person.login_id}}", "en": "Call {{person.login_id}}"},
                        "assign": "round_robin", "due": {"value": 1, "unit": "day"}}], "tasks")
    mine = ja.client.get("/api/v1/journey-tasks", headers=ja.as_("advisor")).json()["tasks"]
    theirs = ja.client.get("/api/v1/journey-tasks", headers=ja.as_("advisor2")).json()["tasks"]
    assert (len(mine), len(theirs)) == (2, 2)
    assert {t["assignee"] for t in mine} != {t["assignee"] for t in theirs}
    every = ja.client.get("/api/v1/journey-tasks", headers=ja.as_("analyst")).json()["tasks"]
    assert len(every) == 4
    assert {t["title"] for t in every} == {"回访 s1", "Call s2", "回访 s3", "回访 s4"}
    refused = ja.client.post(f"/api/v1/journey-tasks/{theirs[0]['id']}/close", json={"outcome": "done"},
                             headers=ja.as_("advisor"))
    assert refused.status_code == 404
    done = ja.client.post(f"/api/v1/journey-tasks/{mine[0]['id']}/close", json={"outcome": "no_answer"},
                          headers=ja.as_("advisor"))
    assert done.json()["status"] == "no_answer"
    again = ja.client.post(f"/api/v1/journey-tasks/{mine[0]['id']}/close", json={"outcome": "done"},
                           headers=ja.as_("advisor"))
    assert again.status_code == 409
    bad = ja.client.post(f"/api/v1/journey-tasks/{mine[1]['id']}/close", json={"outcome": "maybe"},
                         headers=ja.as_("advisor"))
    assert (bad.status_code, bad.json()["field"]) == (400, "outcome")
    # by capacity: the advisor with fewer open tasks gets the next ones
    run_scheduled(ja, [{"action": "task", "title": "again", "assign": "capacity"}], "capacity")
    open_now = ja.client.get("/api/v1/journey-tasks", params={"status": "open"},
                             headers=ja.as_("analyst")).json()["tasks"]
    counts: dict[int, int] = {}
    for t in open_now:
        counts[t["assignee"]] = counts.get(t["assignee"], 0) + 1
    assert sorted(counts.values()) == [3, 4]


def test_setting_a_person_property(ja: JourneyApp) -> None:
    run_scheduled(ja, [{"action": "set_property", "property": "recall_status", "value": "contacted"}], "props")
    ja.platform.flush()
    found = ja.runtime.audience.properties(ja.project.id, [("login_id", "s1"), ("login_id", "s4")])
    assert found[("login_id", "s1")]["recall_status"] == "contacted"
    assert found[("login_id", "s4")]["grade"] == 1
