"""Alerts of the real-time board, checked by the scheduler's hourly job on a real store and delivered to a
webhook receiver on loopback: a drop below the usual band for the hour of the week fires once, an unchanged
state sends nothing, the return to the band sends "ok"; thresholds; a receiver that is down is recorded."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from edupulse.conf import JourneySettings, Settings
from edupulse.journeys.channels import ChannelStore
from edupulse.journeys.senders import Senders
from edupulse.journeys.vault import SecretBox
from edupulse.meta.alerts import AlertStore
from edupulse.ops.alerts import AlertJob, AlertSpec, check, hourly_counts, last_complete_hour, run_alerts
from edupulse.ops.scheduler import Scheduler
from edupulse.runtime import Platform

TZ = ZoneInfo("Asia/Shanghai")
HOUR = dt.datetime(2026, 11, 30, 10, tzinfo=TZ)  # a Monday, 10:00 in Shanghai


class Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        Receiver.received.append(json.loads(self.rfile.read(length)))
        body = b'{"errcode": 0, "errmsg": "ok"}'  # what the robots answer; webhooks only need a 2xx
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.received = []
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def leads(start: dt.datetime, count: int, tag: str) -> list[dict[str, Any]]:
    return [{"type": "track", "event": "lead_created", "distinct_id": f"{tag}-{i}", "distinct_id_type": "login_id",
             "time": (start + dt.timedelta(minutes=2 * i)).isoformat(), "properties": {"channel": "douyin"}}
            for i in range(count)]


@pytest.fixture
def board(tmp_path: Path) -> Iterator[Any]:
    platform = Platform(Settings(data_dir=tmp_path / "data")).open(background_loader=False)
    project = platform.meta.create_project("Alert School").project
    records = []
    for week in range(1, 9):  # 10 leads in the same two hours of the week in each of the 8 weeks before
        for hour in (0, 1):
            records += leads(HOUR - dt.timedelta(weeks=week) + dt.timedelta(hours=hour), 10, f"w{week}h{hour}")
    records += leads(HOUR + dt.timedelta(hours=1), 9, "now")  # none at HOUR itself: a drop
    assert platform.ingestor.ingest(project, records).rejected == 0
    platform.loader.catch_up()  # type: ignore[union-attr]
    yield platform, project
    platform.close()


def test_an_alert_fires_once_per_change_of_state(board: Any, receiver: str) -> None:
    platform, project = board
    store = AlertStore(platform.meta)
    band = store.save(project.id, AlertSpec(name="leads band", event="lead_created", kind="anomaly",
                                            webhook_url=receiver).stored(), "tester")
    floor = store.save(project.id, AlertSpec(name="no leads", event="lead_created", kind="threshold", op="below",
                                             value=1, webhook_url=receiver).stored(), "tester")
    down = store.save(project.id, AlertSpec(name="receiver down", event="lead_created", kind="threshold", op="below",
                                            value=1, webhook_url=f"http://127.0.0.1:{closed_port()}/").stored(),
                      "tester")
    scheduler = Scheduler(platform.meta, platform.settings, jobs=[AlertJob(platform)])
    first = scheduler.tick((HOUR + dt.timedelta(hours=1, minutes=5)).astimezone(dt.UTC))["alerts"]
    assert {(c["alert_id"], c["state"]) for c in first} == {(band["id"], "firing"), (floor["id"], "firing"),
                                                            (down["id"], "firing")}
    assert sorted(m["alert"] for m in Receiver.received) == ["leads band", "no leads"]
    fired = next(m for m in Receiver.received if m["alert"] == "leads band")
    assert fired["value"] == 0
    assert fired["hour"] == "2026-11-30T10:00"
    assert fired["expected"]["mean"] == 10
    assert fired["expected"]["low"] > 0
    failed = store.events(project.id, down["id"])[0]
    assert not failed["delivered"]
    assert failed["error"]
    # the same hour again: the job is not due, and the alerts were checked
    assert scheduler.tick((HOUR + dt.timedelta(hours=1, minutes=30)).astimezone(dt.UTC)) == {}
    # the next hour: 9 leads, inside the band (10 ± 3 √10) and above the floor: back to ok, sent once
    Receiver.received.clear()
    second = scheduler.tick((HOUR + dt.timedelta(hours=2, minutes=5)).astimezone(dt.UTC))["alerts"]
    assert {(c["alert_id"], c["state"]) for c in second} >= {(band["id"], "ok"), (floor["id"], "ok")}
    assert sorted((m["alert"], m["state"]) for m in Receiver.received) == [("leads band", "ok"), ("no leads", "ok")]
    assert [e["state"] for e in store.events(project.id, band["id"])] == ["ok", "firing"]
    # the hour after: no lead at 12:00, as usual for that hour of the week: the band stays ok (nothing sent), the
    # floor fires again
    Receiver.received.clear()
    third = scheduler.tick((HOUR + dt.timedelta(hours=3, minutes=5)).astimezone(dt.UTC))["alerts"]
    assert {(c["alert_id"], c["state"]) for c in third} == {(floor["id"], "firing"), (down["id"], "firing")}
    assert [(m["alert"], m["state"]) for m in Receiver.received] == [("no leads", "firing")]
    assert [e["state"] for e in store.events(project.id, band["id"])] == ["ok", "firing"]


def test_a_channel_alert_counts_only_that_channel(board: Any) -> None:
    platform, project = board
    spec = AlertSpec(name="baidu", event="lead_created", channel="baidu_sem", kind="threshold", op="above", value=0)
    hour = last_complete_hour((HOUR + dt.timedelta(hours=2, minutes=1)).astimezone(dt.UTC), TZ)
    counts = hourly_counts(platform.query_service(), project, spec, hour)
    assert not check(spec, counts, hour).firing  # the leads are douyin's (no person channel: none counted)


@pytest.mark.parametrize(("body", "words"), [
    ({"name": "x", "event": "e", "kind": "threshold"}, "needs op"),
    ({"name": "x", "event": "e", "kind": "anomaly", "webhook_url": "ftp://x"}, "http"),
    ({"name": "x", "event": "e", "kind": "anomaly", "weeks": 1}, "greater than or equal to 3"),
])
def test_bad_alerts_say_why(body: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        AlertSpec.model_validate(body)


def test_an_alert_goes_to_a_wecom_robot_of_the_journeys(board: Any, receiver: str) -> None:
    platform, project = board
    channels = ChannelStore(platform.meta, SecretBox.open("", platform.settings.data_dir))
    channels.save(project.id, {"name": "ops-robot", "kind": "wecom", "secrets": {"webhook_url": receiver}},
                  "tester", dt.datetime.now(dt.UTC))
    senders = Senders(channels, JourneySettings(allowed_hosts="127.0.0.1"))
    store = AlertStore(platform.meta)
    robot = store.save(project.id, AlertSpec(name="leads band", event="lead_created", kind="anomaly",
                                             webhook_url="channel:ops-robot").stored(), "tester")
    missing = store.save(project.id, AlertSpec(name="nowhere", event="lead_created", kind="anomaly",
                                               webhook_url="channel:nope").stored(), "tester")
    try:
        changes = run_alerts(store, platform.query_service(), platform.meta.projects(),
                             (HOUR + dt.timedelta(hours=1, minutes=5)).astimezone(dt.UTC), senders)
    finally:
        senders.close()
    assert {c["alert_id"]: c["error"] for c in changes}[robot["id"]] is None, [c["error"] for c in changes]
    assert {c["alert_id"]: c["error"] for c in changes}[missing["id"]]
    assert len(Receiver.received) == 1
    text = Receiver.received[0]["text"]["content"]
    assert Receiver.received[0]["msgtype"] == "text"
    assert "leads band" in text
    assert "告警 firing" in text
    assert "2026-11-30T10:00" in text
    assert "no DingTalk or WeCom channel named 'nope'" in store.events(project.id, missing["id"])[0]["error"]
