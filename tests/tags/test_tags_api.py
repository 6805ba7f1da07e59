"""The tags API: viewers read, analysts define, run and upload, advisors see only their persons' values;
uploads report each bad line and keep the good ones; runs are polled; changes are versioned and audited."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from conftest import ProjectKeys
from edupulse.api.app import create_app
from edupulse.auth.permissions import Role, Scope
from edupulse.cli import main
from edupulse.conf import Settings
from edupulse.runtime import Platform

with warnings.catch_warnings():  # starlette warns about its httpx transport at import
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

ATTENDER = {"name": "api_attender", "description": "attended a lesson", "definition": {
    "type": "custom_tiers", "tiers": [{"name": "twice", "condition": {"event": "lesson_attended", "at_least": 2}},
                                      {"name": "once", "condition": {"event": "lesson_attended"}}]}}


def test_roles_runs_values_and_history(gov: Any) -> None:
    c = gov.client
    viewer, analyst, advisor = gov.bearer("viewer"), gov.bearer("analyst"), gov.bearer("advisor")
    refused = c.post("/api/v1/tags", json=ATTENDER, headers=viewer)
    assert refused.status_code == 403
    bad = c.post("/api/v1/tags", json={**ATTENDER, "definition": {"type": "custom_tiers", "tiers": []}},
                 headers=analyst)
    assert bad.status_code == 400
    assert "definition.custom_tiers.tiers" in bad.json()["error"]
    made = c.post("/api/v1/tags", json=ATTENDER, headers=analyst)
    assert made.status_code == 201, made.text
    assert c.post("/api/v1/tags", json=ATTENDER, headers=analyst).status_code == 409
    listed = c.get("/api/v1/tags", headers=viewer).json()["tags"]
    names = {t["name"] for t in listed}
    assert next(t for t in listed if t["name"] == "api_attender")["coverage"] == 0.0  # not run yet
    assert {"api_attender", "missed_3_in_a_row", "referral_kol", "rfm", "lead_propensity"} <= names
    preview = c.post("/api/v1/tags/preview", json=ATTENDER, headers=analyst).json()
    assert preview["units"] == 2
    assert c.post("/api/v1/tags/api_attender/run", headers=viewer).status_code == 403
    run = c.post("/api/v1/tags/api_attender/run", headers=analyst).json()
    assert run["status"] == "finished", run
    assert run["units"] == 2
    listed = c.get("/api/v1/tags", headers=viewer).json()["tags"]
    assert next(t for t in listed if t["name"] == "api_attender")["coverage"] == 1.0  # alice and bob
    polled = c.get(f"/api/v1/tags/api_attender/runs/{run['id']}", headers=viewer).json()
    assert polled["status"] == "finished"
    every = c.get("/api/v1/tags/api_attender/values", headers=gov.bearer("admin")).json()
    assert every["total"] == 2
    tiers = {v["identities"]["login_id"][0]: v["value"] for v in every["values"]}
    assert tiers == {"alice": "twice", "bob": "once"}
    mine = c.get("/api/v1/tags/api_attender/values", headers=advisor).json()
    assert [v["identities"]["login_id"] for v in mine["values"]] == [["alice"]]
    assert mine["total"] == 1
    month_ago = (gov.clock[0] - dt.timedelta(days=30)).date().isoformat()
    assert c.get(f"/api/v1/tags/api_attender/values?as_of={month_ago}", headers=viewer).json()["total"] == 0
    forgotten = c.get("/api/v1/tags/api_attender/values?as_of=2020-01-01", headers=viewer)  # history: 400 days
    assert forgotten.status_code == 400
    assert forgotten.json()["error"].startswith("as_of: tag history is kept for 400 days")
    assert c.get("/api/v1/tags/api_attender/values?as_of=yesterday", headers=viewer).status_code in (400, 422)
    assert c.get("/api/v1/tags/nope/values", headers=viewer).status_code == 404
    changed = c.put("/api/v1/tags/api_attender", json={k: v for k, v in ATTENDER.items() if k != "name"},
                    headers=analyst)
    assert changed.json()["version"] == 2
    shown = c.get("/api/v1/tags/api_attender", headers=viewer).json()
    assert [v["change"] for v in shown["versions"]] == ["created", "changed"]
    actions = {e["action"] for e in gov.platform.meta.audit.entries(_filter("tag."))}
    assert {"tag.create", "tag.update", "tag.run"} <= actions
    assert c.delete("/api/v1/tags/api_attender", headers=analyst).status_code == 200
    assert c.get("/api/v1/tags/api_attender", headers=viewer).status_code == 404


def _filter(prefix: str) -> Any:
    from edupulse.meta.audit import AuditFilter

    return AuditFilter(action=prefix)


def test_upload_keeps_good_lines_and_names_bad_ones(gov: Any) -> None:
    c = gov.client
    analyst = gov.bearer("analyst")
    made = c.post("/api/v1/tags", json={"name": "crm_grade", "definition": {"type": "uploaded", "mode": "overwrite"}},
                  headers=analyst)
    assert made.status_code == 201, made.text
    csv = "login_id,grade\nalice,A\n,B\nbob\nnobody,C\nalice,D\nbob,B\n"
    done = c.post("/api/v1/tags/crm_grade/upload", content=csv.encode(), headers=analyst).json()
    assert done["run"]["status"] == "finished"
    assert done["problems"] == ["line 3: the identity is empty", "line 4: expected 2 columns (identity, value), "
                                "found 1", "line 5: no person has the login_id 'nobody'",
                                "line 6: 'alice' was given already on line 2"]
    values = c.get("/api/v1/tags/crm_grade/values", headers=gov.bearer("admin")).json()["values"]
    assert {v["identities"]["login_id"][0]: v["value"] for v in values} == {"alice": "A", "bob": "B"}
    # overwrite: bob is no longer in the file
    c.post("/api/v1/tags/crm_grade/upload", content=b"id,grade\nalice,B\n", headers=analyst)
    values = c.get("/api/v1/tags/crm_grade/values", headers=gov.bearer("admin")).json()["values"]
    assert {v["identities"]["login_id"][0]: v["value"] for v in values} == {"alice": "B"}
    ran = c.post("/api/v1/tags/crm_grade/run", headers=analyst).json()
    assert ran["status"] == "failed"
    assert "upload" in ran["error"]
    assert c.post("/api/v1/tags/rfm/upload", content=b"a,b\n", headers=analyst).status_code == 400


def test_upload_reads_values_of_the_tags_value_type(gov: Any) -> None:
    c = gov.client
    analyst = gov.bearer("analyst")
    made = c.post("/api/v1/tags", json={"name": "crm_score", "value_type": "number",
                                        "definition": {"type": "uploaded"}}, headers=analyst)
    assert made.status_code == 201, made.text
    done = c.post("/api/v1/tags/crm_score/upload", content=b"login_id,score\nalice,87.5\nbob,high\n",
                  headers=analyst).json()
    assert done["problems"] == ["line 3: 'high' is not a number (the tag's values are numbers)"]
    values = c.get("/api/v1/tags/crm_score/values", headers=gov.bearer("admin")).json()["values"]
    assert {v["identities"]["login_id"][0]: v["value"] for v in values} == {"alice": 87.5}


def test_command_line(settings: Settings, project: ProjectKeys) -> None:
    runner = CliRunner()
    env = {"EDUPULSE_DATA_DIR": str(settings.data_dir), "EDUPULSE_METADATA_URL": settings.resolved_metadata_url}
    made = runner.invoke(main, ["tag", "create", "--project", project.name, "--definition",
                                '{"name": "first_channel", "definition": {"type": "first_event", "event": '
                                '"page_view", "property": "channel"}}'], env=env)
    assert made.exit_code == 0, made.output
    listed = runner.invoke(main, ["tag", "list", "--project", project.name], env=env)
    assert "first_channel\tperson\tfirst_event\t0" in listed.output
    ran = runner.invoke(main, ["tag", "run", "first_channel", "--project", project.name], env=env)
    assert ran.exit_code == 0, ran.output
    assert '"status": "finished"' in ran.stdout
    stages = [line.split(" (")[0] for line in ran.stderr.splitlines()]
    assert stages == ["first_channel: computing [0/2]", "first_channel: counting [1/2]"]  # the run's progress
    shown = runner.invoke(main, ["tag", "values", "first_channel", "--project", project.name], env=env)
    assert shown.exit_code == 0
    gone = runner.invoke(main, ["tag", "delete", "first_channel", "--project", project.name], env=env)
    assert "deleted tag" in gone.output


def test_experiments_target_tags_and_persons_lists_filter_by_them(gov: Any) -> None:
    c = gov.client
    admin = gov.bearer("admin")
    made = c.post("/api/v1/tags", json={**ATTENDER, "name": "target_attender"}, headers=admin)
    assert made.status_code == 201, made.text
    assert c.post("/api/v1/tags/target_attender/run", headers=admin).json()["status"] == "finished"
    two = [{"key": "control", "weight": 0.5}, {"key": "treatment", "weight": 0.5}]
    for key, tags in (("tag-any", ["target_attender"]), ("tag-twice", ["target_attender=twice"])):
        body = {"key": key, "variants": two, "metrics": [{"event": "lesson_attended"}], "targeting": {"tags": tags}}
        assert c.post("/api/v1/experiments", json=body, headers=admin).status_code == 201
        assert c.post(f"/api/v1/experiments/{key}/start", headers=admin).status_code == 200
    entered = {}
    for key in ("tag-any", "tag-twice"):
        for who in ("alice", "bob", "nobody"):
            answer = c.get(f"/api/v1/experiments/{key}/assign", params={"distinct_id": who}, headers=admin).json()
            entered[(key, who)] = answer["in_experiment"]
    assert entered == {("tag-any", "alice"): True, ("tag-any", "bob"): True, ("tag-any", "nobody"): False,
                       ("tag-twice", "alice"): True, ("tag-twice", "bob"): False, ("tag-twice", "nobody"): False}
    persons = c.post("/api/v1/query", json={"kind": "persons", "tags": ["target_attender"], "filters": [
        {"tag": "target_attender", "value": "once"}]}, headers=admin).json()
    assert [i["value"] for p in persons["persons"] for i in p["identities"] if i["type"] == "login_id"] == ["bob"]
    assert persons["persons"][0]["tags"] == {"target_attender": "once"}
    exported = c.post("/api/v1/query?format=csv", json={"kind": "persons", "tags": ["target_attender"]}, headers=admin)
    assert exported.text.splitlines()[0].endswith(",tag.target_attender")


def test_pages_history_and_a_persons_tags(gov: Any) -> None:
    c = gov.client
    admin = gov.bearer("admin")
    made = c.post("/api/v1/tags", json={**ATTENDER, "name": "page_attender"}, headers=admin)
    assert made.status_code == 201, made.text
    assert c.post("/api/v1/tags/page_attender/run", headers=admin).json()["status"] == "finished"
    history = c.get("/api/v1/tags/page_attender/history", headers=admin).json()["days"]
    assert len(history) == 1
    assert sorted(r["value"] for r in history[0]["distribution"]) == ["once", "twice"]
    scoped = c.get("/api/v1/tags/page_attender/history", headers=gov.bearer("advisor"))
    assert scoped.status_code == 200
    assert scoped.json()["days"] == []
    assert "own persons" in scoped.json()["reason"]
    alice = c.post("/api/v1/query", json={"kind": "persons", "search": "alice"}, headers=admin).json()["persons"][0]
    bob = c.post("/api/v1/query", json={"kind": "persons", "search": "bob"}, headers=admin).json()["persons"][0]
    mine = c.get(f"/api/v1/persons/{alice['person_id']}/tags", headers=gov.bearer("advisor")).json()
    assert mine["tags"]["page_attender"]["value"] == "twice"
    assert mine["history"][0] == {"tag": "page_attender", "day": history[0]["day"], "value": "twice", "score": None}
    assert c.get(f"/api/v1/persons/{bob['person_id']}/tags", headers=gov.bearer("advisor")).status_code == 404
    browser, _ = gov.session("analyst")
    for path in ("/tags", "/tags/page_attender", f"/people/{alice['person_id']}"):
        for lang in ("en", "zh"):
            browser.get(f"/lang/{lang}")
            page = browser.get(path)
            assert page.status_code == 200, (path, lang)
    assert "标签" in browser.get("/tags").text


def test_tags_that_would_show_personal_data_need_personal_view(gov: Any) -> None:
    """Tag values are not masked: without personal:view a tag may not read a personal property, compare one
    piece by piece, or be SQL (which reads personal data unmasked); whole-value filters stay allowed."""
    c = gov.client
    analyst, admin = gov.bearer("analyst"), gov.bearer("admin")
    first_phone = {"name": "first_phone", "definition": {
        "type": "first_event", "event": "lesson_scheduled", "property": "phone"}}
    phones_138 = {"name": "phones_138", "definition": {"type": "custom_tiers", "tiers": [
        {"name": "138", "condition": {"property": "person.phone", "op": "between",
                                      "value": [13800000000, 13899999999]}}]}}
    one_phone = {"name": "one_phone", "definition": {"type": "custom_tiers", "tiers": [
        {"name": "known", "condition": {"property": "person.phone", "value": "13812345678"}}]}}
    sql_tag = {"name": "sql_phone", "definition": {
        "type": "sql", "sql": "SELECT person_id AS unit, 'x' AS value FROM persons"}}
    for body, reason in ((first_phone, "reading the personal property phone"),
                         (phones_138, "comparing the personal property person.phone with between"),
                         (sql_tag, "an SQL tag needs the personal:view permission")):
        for path in ("/api/v1/tags", "/api/v1/tags/preview"):
            refused = c.post(path, json=body, headers=analyst)
            assert refused.status_code == 403, refused.text
            assert reason in refused.json()["error"]
    assert c.post("/api/v1/tags/preview", json=one_phone, headers=analyst).status_code == 200
    assert c.post("/api/v1/tags/preview", json=first_phone, headers=admin).status_code == 200
    made = c.post("/api/v1/tags", json=one_phone, headers=analyst)
    assert made.status_code == 201, made.text
    changed = c.put("/api/v1/tags/one_phone", json={"definition": first_phone["definition"]}, headers=analyst)
    assert changed.status_code == 403, changed.text
    assert c.delete("/api/v1/tags/one_phone", headers=analyst).status_code == 200


def test_advisors_see_group_tags_of_the_groups_their_persons_belong_to(tmp_path: Path) -> None:
    """A group tag's values, to an advisor: only the groups (of the tag's type) that one of their assigned
    persons belongs to, i.e. that one of their events names; all of them to an analyst."""
    settings = Settings(data_dir=tmp_path / "data", metadata_url=f"sqlite:///{tmp_path / 'meta.sqlite'}")
    platform = Platform(settings).open()
    try:
        made = platform.meta.create_project("Groups")
        project = made.project
        platform.meta.add_group_type(project.id, "class")

        def attended(who: str, cls: str, day: int) -> dict[str, Any]:
            return {"type": "track", "event": "lesson_attended", "distinct_id": who, "distinct_id_type": "login_id",
                    "time": f"2026-09-0{day}T10:00:00+08:00", "groups": {"class": cls}, "properties": {}}

        history = [attended("alice", "C1", 1), attended("alice", "C1", 2), attended("bob", "C2", 1),
                   attended("carol", "C1", 3), attended("carol", "C3", 3),
                   {"type": "track", "event": "page_view", "distinct_id": "dan", "distinct_id_type": "login_id",
                    "time": "2026-09-01T09:00:00+08:00", "properties": {}}]
        assert platform.ingestor.ingest(project, history).rejected == 0
        platform.flush()
        accounts = platform.meta.accounts
        keys = {}
        for who, role in (("analyst", Role.analyst), ("advisor", Role.advisor), ("carols", Role.advisor),
                          ("nobodys", Role.advisor)):
            user = accounts.create_user(f"{who}@school.example", "correct horse battery staple")
            accounts.set_role(user.id, project.id, role)
            keys[who] = {"Authorization": f"Bearer {accounts.create_key(user.id, 'tests', frozenset(Scope))[0]}"}
            if who == "advisor":
                accounts.assign(project.id, user.id, "login_id", "alice")
            if who == "carols":
                accounts.assign(project.id, user.id, "login_id", "carol")
            if who == "nobodys":
                accounts.assign(project.id, user.id, "login_id", "dan")  # in no class
        with TestClient(create_app(settings, platform, run_scheduler=False)) as c:
            tag = {"name": "class_lessons", "unit": "class", "value_type": "number", "definition": {
                "type": "metric_tiers", "measure": {"event": "lesson_attended"}}}
            assert c.post("/api/v1/tags", json=tag, headers=keys["analyst"]).status_code == 201
            assert c.post("/api/v1/tags/class_lessons/run", headers=keys["analyst"]).json()["status"] == "finished"

            def seen(who: str) -> dict[str, Any]:
                answer = c.get("/api/v1/tags/class_lessons/values", headers=keys[who]).json()
                shown = {v["group_key"]: v["value"] for v in answer["values"]}
                assert answer["total"] == len(shown)
                return shown

            assert seen("analyst") == {"C1": 3, "C2": 1, "C3": 1}
            assert seen("advisor") == {"C1": 3}  # alice's class, with every member's lessons (a class's value)
            assert seen("carols") == {"C1": 3, "C3": 1}
            assert seen("nobodys") == {}
            listed = c.get("/api/v1/tags", headers=keys["advisor"]).json()["tags"]
            mine = next(t for t in listed if t["name"] == "class_lessons")
            assert (mine["units"], mine["coverage"]) == (1, None)  # the project's coverage is not theirs
            shown = c.get("/api/v1/tags/class_lessons", headers=keys["carols"]).json()
            assert (shown["units"], shown["distribution"]) == (2, None)
            assert c.get("/api/v1/tags/class_lessons/history", headers=keys["advisor"]).json()["days"] == []
    finally:
        platform.close()
