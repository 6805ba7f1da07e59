"""Access control over the whole API: every route declares a permission, the route × role matrix, the
generated permissions doc, projects kept apart through every query kind, key scopes, advisors, masking."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from edupulse.api.auth import route_permissions, takes_write_key, uses_dependency, write_project
from edupulse.api.permissions_doc import documented_routes
from edupulse.auth.masking import mask_value, match_token
from edupulse.auth.permissions import MATRIX, Permission, Role
from edupulse.queries.registry import Registry
from gov_fixtures import Gov

# Routes that need no permission: status, sign-in, and what any signed-in caller may do to their own session.
# Ingestion routes are recognised by their use of the write key (write_project).
PUBLIC = {"/api/v1/status", "/api/v1/auth/login", "/", "/login", "/static/edupulse.js", "/xapi/about",
          "/api/features/{client_key}"}
SIGNED_IN = {"/api/v1/auth/logout", "/api/v1/auth/logout-everywhere", "/api/v1/auth/me"}
# Web UI: pages send visitors without a session to /login and get their data from the API routes (which declare
# permissions); a shared dashboard's token is its only credential; the language switch is for anyone.
WEB = {"/lang/{code}", "/project", "/analysis", "/analysis/{kind}", "/reports", "/dashboards",
       "/dashboards/{dashboard_id}", "/share/{token}", "/api/v1/share/{token}/reports/{report_id}", "/people",
       "/people/{person_id}", "/catalog", "/ingestion", "/settings", "/segments", "/admin/members", "/admin/keys",
       "/admin/audit", "/admin/lifecycle", "/admin/metrics", "/admin/quarantine",
       "/experiments", "/experiments/{key}", "/scenarios/{name}", "/journeys", "/journeys/{journey_id:int}",
       "/journey-tasks", "/tags", "/tags/{name}", "/scenarios/learning_indicators/classes/{class_id}"}
DOCS = Path(__file__).resolve().parents[2] / "docs" / "permissions.md"

# One small query per analysis model, so the cross-project test covers every kind the engine has.
RANGE = {"date_from": "2026-09-01", "date_to": "2026-09-05"}
EXAMPLES: dict[str, dict[str, Any]] = {
    "trends": {"kind": "trends", "series": [{"event": "lesson_scheduled"}], "date_range": RANGE},
    "distribution": {"kind": "distribution", "event": "lesson_scheduled", "date_range": RANGE},
    "interval": {"kind": "interval", "start": {"event": "lesson_scheduled"}, "end": {"event": "lesson_attended"},
                 "date_range": RANGE},
    "ltv": {"kind": "ltv", "start": {"event": "lesson_scheduled"}, "date_range": RANGE},
    "paths": {"kind": "paths", "start_event": "lesson_scheduled", "date_range": RANGE},
    "attribution": {"kind": "attribution", "conversion": {"event": "lesson_attended"},
                    "touches": [{"event": "lesson_scheduled", "channel": "lesson_id"}], "date_range": RANGE},
    "person": {"kind": "person", "identity": {"type": "login_id", "value": "alice"}},
    "persons": {"kind": "persons"},
    "segments": {"kind": "segments", "definition": {"condition": {"event": "lesson_scheduled"}}},
    "funnel": {"kind": "funnel", "steps": [{"event": "lesson_scheduled"}, {"event": "lesson_attended"}],
               "date_range": RANGE},
    "retention": {"kind": "retention", "start_event": {"event": "lesson_scheduled"},
                  "return_event": {"event": "lesson_attended"}, "period": "day", "periods": 2, "date_range": RANGE},
    "sql": {"kind": "sql", "sql": "SELECT event, count(*) AS n FROM events GROUP BY event ORDER BY event"},
}
# who runs the example in project A: SQL reads raw properties, so it is for admins (query:sql and personal:view)
RUNS_AS = {"sql": "admin"}


def api_routes(gov: Gov) -> list[tuple[str, str, Permission | None, bool]]:
    return [r for r in route_permissions(gov.client.app) if r[1] not in ("/openapi.json", "/docs", "/redoc",
                                                                           "/docs/oauth2-redirect")]


def test_every_route_declares_a_permission(gov: Gov) -> None:
    app = gov.client.app
    declared = [r for r in api_routes(gov) if r[2] is not None]
    assert len(declared) >= 25, "the route walk found too few routes: is every router's route seen?"
    undeclared = [(m, p) for m, p, perm, _ in api_routes(gov)
                  if perm is None and p not in PUBLIC | SIGNED_IN | WEB and not takes_write_key(app, p)]
    assert not undeclared, f"routes without require(permission): {undeclared}"
    assert uses_dependency(app, "/api/v1/ingest", write_project)


def test_permissions_doc_is_generated_from_the_matrix_and_routes() -> None:
    """A route's permission shows in the docs, so a changed or new one is seen in review."""
    assert DOCS.read_text(encoding="utf-8") == documented_routes(), \
        "run: python -m edupulse.api.permissions_doc > docs/permissions.md"
    assert "| GET `/api/v1/quarantine` | `quarantine:view` |" in DOCS.read_text(encoding="utf-8")


def _call(gov: Gov, method: str, path: str, headers: dict[str, str], client: Any = None) -> int:
    client = client or gov.client
    url = re.sub(r"\{[^}]+\}", "999999", path)
    if method in ("GET", "DELETE"):
        return client.request(method, url, headers=headers).status_code
    return client.request(method, url, headers=headers, json={}).status_code


@pytest.mark.parametrize("via", ["key", "session"])
@pytest.mark.parametrize("role", [*Role, "superuser"])
def test_route_role_matrix(gov: Gov, role: Role | str, via: str) -> None:
    """Every route, called as every role (with a personal key, or signed in): 403 exactly where the matrix
    says no."""
    who = role.value if isinstance(role, Role) else role
    if via == "key":
        client, headers = gov.client, gov.bearer(who)
    else:
        client, csrf = gov.session(who)
        headers = {"X-CSRF-Token": csrf}
    wrong = []
    for methods, path, permission, organization in api_routes(gov):
        if permission is None:
            continue
        for method in methods.split(","):
            status = _call(gov, method, path, headers, client)
            allowed = who == "superuser" if organization else who == "superuser" or permission in MATRIX[Role(who)]
            if (status == 403) == allowed or status == 401:
                wrong.append(f"{method} {path} as {who}: {status} ({permission.value})")
    assert not wrong, "\n".join(wrong)


def test_unauthenticated_requests_get_401(gov: Gov) -> None:
    for methods, path, permission, _ in api_routes(gov):
        if permission is None and path not in SIGNED_IN:
            continue
        for method in methods.split(","):
            assert _call(gov, method, path, {}) == 401, f"{method} {path}"


@pytest.mark.parametrize("kind", Registry().kinds)
def test_a_viewer_cannot_reach_another_project_through_any_query_kind(gov: Gov, kind: str) -> None:
    if kind not in EXAMPLES:
        pytest.fail(f"add an example query of kind {kind!r} to EXAMPLES in {__file__}")
    query = EXAMPLES[kind]
    who = RUNS_AS.get(kind, "viewer")
    own = gov.client.post("/api/v1/query", json=query, headers=gov.bearer(who))
    assert own.status_code == 200, own.text
    for attempt in ({"params": {"project": "School B"}}, {"params": {"project": str(gov.b.id)}},
                    {"headers_extra": {"X-EduPulse-Project": "School B"}}):
        headers = {**gov.bearer(who), **attempt.get("headers_extra", {})}
        response = gov.client.post("/api/v1/query", json=query, headers=headers, params=attempt.get("params"))
        assert response.status_code == 403, response.text
        assert "only-in-B" not in response.text
    # the secret API key of A cannot be pointed at B either
    response = gov.client.post("/api/v1/query", json=query, params={"project": "School B"},
                               headers={"Authorization": f"Bearer {gov.a_api_key}"})
    assert response.status_code == 403
    # an unknown project answers like a project one is not a member of
    unknown = gov.client.post("/api/v1/query", json=query, params={"project": "Nope"}, headers=gov.bearer(who))
    assert unknown.status_code == 403
    # and B's own viewer sees B's data only (alice is a person of A)
    b_result = gov.client.post("/api/v1/query", json=query, headers=gov.bearer("viewer_b"))
    if kind == "sql":
        assert b_result.status_code == 403
        b_result = gov.client.post("/api/v1/query", json=query, headers={"Authorization": f"Bearer {gov.b_api_key}"})
        assert b_result.json()["rows"] == [["lesson_scheduled", 1]]
    elif kind == "person":
        assert b_result.status_code == 400
    else:
        assert b_result.status_code == 200, b_result.text
        assert b_result.json() != own.json()


def test_sql_kind_needs_query_sql_and_personal_view(gov: Gov) -> None:
    body = {"kind": "sql", "sql": "SELECT properties FROM persons"}
    viewer = gov.client.post("/api/v1/query", json=body, headers=gov.bearer("viewer"))
    assert viewer.status_code == 403
    assert "query:sql" in viewer.text
    analyst = gov.client.post("/api/v1/query", json=body, headers=gov.bearer("analyst"))
    assert analyst.status_code == 403  # raw SQL would show phone numbers unmasked
    assert "personal:view" in analyst.text
    admin = gov.client.post("/api/v1/query", json=body, headers=gov.bearer("admin"))
    assert admin.status_code == 200, admin.text
    assert any("13812345678" in str(row) for row in admin.json()["rows"])


def test_project_secret_key_still_works_as_admin_of_its_project(gov: Gov) -> None:
    headers = {"Authorization": f"Bearer {gov.a_api_key}"}
    assert gov.client.get("/api/v1/quarantine", headers=headers).json()["project"] == "School A"
    assert gov.client.post("/api/v1/query", json=EXAMPLES["trends"], headers=headers).status_code == 200
    write = gov.client.get("/api/v1/quarantine", headers={"Authorization": f"Bearer {gov.a.write_key}"})
    assert write.status_code == 403
    assert "write key" in write.json()["detail"]


def test_key_scopes_cannot_escalate(gov: Gov) -> None:
    accounts = gov.platform.meta.accounts
    from edupulse.auth.permissions import Scope

    query_key, _ = accounts.create_key(gov.users["admin"], "query only", frozenset({Scope.query}))
    headers = {"Authorization": f"Bearer {query_key}"}
    assert gov.client.post("/api/v1/query", json=EXAMPLES["trends"], headers=headers).status_code == 200
    assert gov.client.get("/api/v1/users", headers=headers).status_code == 403  # the owner is admin, the key is not
    assert gov.client.get("/api/v1/audit", headers=headers).status_code == 403
    made = gov.client.post("/api/v1/keys", json={"name": "up", "scopes": ["admin"]}, headers=headers)
    assert made.status_code == 403  # a key cannot mint a key with more scopes than it has
    same = gov.client.post("/api/v1/keys", json={"name": "same", "scopes": ["query"]}, headers=headers)
    assert same.status_code == 201
    # an admin-scope key of a viewer has a viewer's permissions only
    assert gov.client.get("/api/v1/users", headers=gov.bearer("viewer")).status_code == 403
    # a superuser's query key is not a superuser
    super_query, _ = accounts.create_key(gov.users["superuser"], "q", frozenset({Scope.query}))
    response = gov.client.put("/api/v1/lifecycle/policy", json={}, headers={"Authorization": f"Bearer {super_query}"})
    assert response.status_code == 403
    # revoked keys stop at once
    key_id = same.json()["id"]
    assert gov.client.delete(f"/api/v1/keys/{key_id}", headers=headers).status_code == 200
    revoked = {"Authorization": f"Bearer {same.json()['key']}"}
    assert gov.client.post("/api/v1/query", json=EXAMPLES["trends"], headers=revoked).status_code == 401
    # a member cannot revoke someone else's key without keys:manage
    other = accounts.create_key(gov.users["analyst"], "mine", frozenset({Scope.query}))[1]
    assert gov.client.delete(f"/api/v1/keys/{other.id}", headers=gov.bearer("viewer")).status_code == 404
    assert accounts.key(other.id) is not None
    assert not accounts.key(other.id).revoked
    listed = gov.client.get("/api/v1/keys", headers=headers).json()["keys"]
    assert all("key" not in k for k in listed)
    assert {k["prefix"] for k in listed}
    assert any(k["last_used_at"] for k in listed)


def test_advisor_sees_only_assigned_persons_in_person_listings(gov: Gov) -> None:
    def post(who: str, body: dict[str, Any]) -> Any:
        return gov.client.post("/api/v1/query", json=body, headers=gov.bearer(who))

    assert post("analyst", EXAMPLES["persons"]).json()["total"] == 2
    assert post("advisor", EXAMPLES["persons"]).json()["total"] == 1
    assert post("analyst", EXAMPLES["segments"]).json()["total"] == 2
    assert post("advisor", EXAMPLES["segments"]).json()["total"] == 1
    assert post("advisor", EXAMPLES["person"]).status_code == 200  # alice is assigned
    bob = post("advisor", {"kind": "person", "identity": {"type": "login_id", "value": "bob"}})
    assert bob.status_code == 400
    assert "bob" not in bob.text
    assert "no such person" in bob.json()["error"]


def test_advisor_sees_only_assigned_persons(gov: Gov) -> None:
    query = {"kind": "trends", "series": [{"event": "lesson_scheduled", "math": "unique_persons"}],
             "date_range": {"date_from": "2026-09-01", "date_to": "2026-09-05"}}
    analyst = gov.client.post("/api/v1/query", json=query, headers=gov.bearer("analyst")).json()
    advisor = gov.client.post("/api/v1/query", json=query, headers=gov.bearer("advisor")).json()
    assert analyst["series"][0]["aggregated_value"] == 2
    assert advisor["series"][0]["aggregated_value"] == 1  # alice only


def test_personal_properties_are_masked_without_the_permission(gov: Gov) -> None:
    query = {"kind": "trends", "series": [{"event": "lesson_scheduled"}],
             "date_range": {"date_from": "2026-09-01", "date_to": "2026-09-05"},
             "breakdown": {"properties": ["person.phone", "person.grade"]}}
    analyst = gov.client.post("/api/v1/query", json=query, headers=gov.bearer("analyst")).json()
    admin = gov.client.post("/api/v1/query", json=query, headers=gov.bearer("admin")).json()
    assert sorted(s["breakdown"][0] for s in analyst["series"]) == ["138****5678", "139****1111"]
    assert sorted(s["breakdown"][1] for s in analyst["series"]) == ["G3", "G5"]  # not personal
    assert sorted(s["breakdown"][0] for s in admin["series"]) == ["13812345678", "13900001111"]
    # the phone still matches as a filter, without being shown
    matched = gov.client.post("/api/v1/query", headers=gov.bearer("analyst"), json={
        **query, "filters": [{"property": "person.phone", "value": "13812345678"}]}).json()
    assert [s["breakdown"][0] for s in matched["series"]] == ["138****5678"]
    assert mask_value("person.name", "王小明") == "王**"
    assert match_token("+86 138-1234-5678", b"k") == match_token("13812345678", b"k") != match_token("139", b"k")


def test_csv_exports_need_the_permission_are_masked_and_audited(gov: Gov) -> None:
    from edupulse.meta.audit import AuditFilter

    query = {"kind": "trends", "series": [{"event": "lesson_scheduled"}],
             "date_range": {"date_from": "2026-09-01", "date_to": "2026-09-05"},
             "breakdown": {"properties": ["person.phone"]}}
    denied = gov.client.post("/api/v1/query", params={"format": "csv"}, json=query, headers=gov.bearer("viewer"))
    assert denied.status_code == 403
    assert "export" in denied.json()["detail"]
    exported = gov.client.post("/api/v1/query", params={"format": "csv"}, json=query, headers=gov.bearer("analyst"))
    assert exported.status_code == 200, exported.text
    assert "138****5678" in exported.text
    assert "13812345678" not in exported.text
    entry = gov.platform.meta.audit.entries(AuditFilter(action="export", limit=1))[0]
    assert entry["actor"].startswith("analyst@school.example")
    assert entry["detail"]["format"] == "csv"
    assert entry["project_id"] == gov.a.id


MASKING_QUERIES: dict[str, dict[str, Any]] = {
    "funnel": {"kind": "funnel", "steps": [{"event": "lesson_scheduled", "name": "Sign up"},
                                           {"event": "lesson_attended", "name": "name"}],
               "date_range": {"date_from": "2026-09-01", "date_to": "2026-09-05"},
               "breakdown": {"properties": ["person.name"]}},
    "paths": {"kind": "paths", "start_event": "lesson_scheduled", "steps": 3,
              "date_range": {"date_from": "2026-09-01", "date_to": "2026-09-05"}},
    "persons": {"kind": "persons", "limit": 10},
}


def _shared(gov: Gov, query: dict[str, Any]) -> dict[str, Any]:
    admin = gov.bearer("admin")
    report = gov.client.post("/api/v1/reports", json={"name": f"masking {query['kind']}", "query": query},
                             headers=admin).json()
    board = gov.client.post("/api/v1/dashboards", json={"name": f"masking {query['kind']}"}, headers=admin).json()
    gov.client.post(f"/api/v1/dashboards/{board['id']}/items", json={"report_id": report["id"]}, headers=admin)
    token = gov.client.post(f"/api/v1/dashboards/{board['id']}/share", json={"enabled": True},
                            headers=admin).json()["share_token"]
    response = gov.client.get(f"/api/v1/share/{token}/reports/{report['id']}")
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("kind", sorted(MASKING_QUERIES))
@pytest.mark.parametrize("who", ["admin", "analyst", "viewer", "advisor", "share link"])
def test_masking_for_every_role_and_share_links(gov: Gov, who: str, kind: str) -> None:
    """Personal values are masked for callers without personal:view (and share-link holders, who have no role);
    the labels the query's author wrote never are."""
    query = MASKING_QUERIES[kind]
    if who == "share link":
        result, masked = _shared(gov, query), True
    else:
        response = gov.client.post("/api/v1/query", json=query, headers=gov.bearer(who))
        assert response.status_code == 200, response.text
        result, masked = response.json(), Permission.personal_view not in MATRIX[Role(who)]
    text = orjson.dumps(result).decode()
    if kind != "paths":  # path nodes here are events, not persons
        shown = {name for name in ("王小明", "李雷") if name in text}
        assert shown == (set() if masked else {"王小明"} if who == "advisor" else {"王小明", "李雷"})  # advisor: alice
    if kind == "funnel":
        steps = result["results"][0]["steps"]
        assert [s["name"] for s in steps] == ["Sign up", "name"]
        if masked:
            assert {tuple(r["breakdown"]) for r in result["results"]} <= {("王**",), ("李*",)}
    if kind == "paths":
        names = {node["name"] for node in result["nodes"]}
        assert "1:lesson_scheduled" in names
        assert all(t["source"] in names for t in result["transitions"])
    if kind == "persons" and masked:
        assert all("*" in p["properties"]["name"] for p in result["persons"] if "name" in p["properties"])


@pytest.mark.parametrize("who", [*(r.value for r in Role), "share link"])
@pytest.mark.parametrize(("order_by", "personal"), [("person.name", True), ("person.phone", True),
                                                     ("phone", True), ("person.grade", False)])
def test_sorting_persons_by_a_personal_property_needs_personal_view(gov: Gov, who: str, order_by: str,
                                                                     personal: bool) -> None:
    """The order of masked values would reveal them (sorted by phone, a known number's neighbours): callers
    without personal:view, and share-link holders, cannot sort persons by a personal property."""
    query = {"kind": "persons", "order_by": order_by, "descending": True}
    if who == "share link":
        admin = gov.bearer("admin")
        saved = gov.client.post("/api/v1/reports", json={"name": f"sorted by {order_by}", "query": query},
                                headers=admin)
        if order_by == "phone":  # not a person property: the report cannot be saved
            assert saved.status_code == 400, saved.text
            return
        report = saved.json()
        board = gov.client.post("/api/v1/dashboards", json={"name": f"sorted by {order_by}"}, headers=admin).json()
        gov.client.post(f"/api/v1/dashboards/{board['id']}/items", json={"report_id": report["id"]}, headers=admin)
        token = gov.client.post(f"/api/v1/dashboards/{board['id']}/share", json={"enabled": True},
                                headers=admin).json()["share_token"]
        response = gov.client.get(f"/api/v1/share/{token}/reports/{report['id']}")
        allowed = False
    else:
        response = gov.client.post("/api/v1/query", json=query, headers=gov.bearer(who))
        allowed = Permission.personal_view in MATRIX[Role(who)]
    if order_by == "phone":  # not a person property at all: refused for everyone, as before
        assert response.status_code in (400, 403), response.text
        return
    if allowed or not personal:
        assert response.status_code == 200, response.text
        return
    assert response.status_code == 403, response.text
    body = response.json()
    reason = body.get("detail") or body.get("error")
    assert f"order_by {order_by}: sorting by a personal property needs the personal:view permission" in reason


@pytest.mark.parametrize("who", [r.value for r in Role])
def test_the_people_page_offers_sorting_by_personal_properties_only_with_personal_view(gov: Gov, who: str) -> None:
    client, _ = gov.session(who)
    page = client.get("/people")
    assert page.status_code == 200
    found = re.search(r'<script id="ep-boot" type="application/json">(.*?)</script>', page.text, re.S)
    assert found is not None
    boot = orjson.loads(found.group(1))
    personal = set(boot["data"]["personal"])
    if Permission.personal_view in MATRIX[Role(who)]:
        assert personal == set()
    else:
        assert {"name", "phone", "mobile"} <= personal


PROBES = [({"property": "person.phone", "op": "between", "value": [13800000000, 13899999999]}, True),
          ({"property": "person.phone", "op": "contains", "value": "1234"}, True),
          ({"property": "phone", "op": "regex", "value": "^138"}, True),
          ({"property": "person.name", "op": "gt", "value": 1}, True),
          ({"any": [{"property": "person.grade", "value": "G5"},
                    {"property": "person.phone", "op": "lte", "value": 13900000000}]}, True),
          ({"property": "person.phone", "op": "in", "value": ["13812345678"]}, False),
          ({"property": "person.grade", "op": "contains", "value": "G"}, False)]


@pytest.mark.parametrize("who", [r.value for r in Role])
@pytest.mark.parametrize(("condition", "probing"), PROBES)
def test_filters_that_would_reveal_a_masked_value_need_personal_view(gov: Gov, who: str, condition: dict[str, Any],
                                                                     probing: bool) -> None:
    """A range, `contains` or `regex` on a personal property, asked again and again, reveals a masked phone
    number digit by digit: callers without personal:view may compare personal values only whole (eq, in),
    in queries, in shared reports and in the segments others will use."""
    query = {"kind": "trends", "series": [{"event": "lesson_scheduled"}], "filters": [condition],
             "date_range": {"date_from": "2026-09-01", "date_to": "2026-09-05"}}
    response = gov.client.post("/api/v1/query", json=query, headers=gov.bearer(who))
    allowed = Permission.personal_view in MATRIX[Role(who)] or not probing
    assert response.status_code == (200 if allowed else 403), response.text
    if not allowed:
        reason = response.json()["detail"]
        assert reason.startswith("filters.0")
        assert "needs the personal:view permission" in reason
    if Permission.analyses_save in MATRIX[Role(who)]:
        segment = gov.client.post("/api/v1/segments", headers=gov.bearer(who), json={
            "name": f"probe {who} {PROBES.index((condition, probing))}",
            "definition": {"condition": condition if "any" not in condition else condition["any"][1]}})
        assert segment.status_code == (201 if allowed else 403), segment.text
        if not allowed:
            assert "definition.condition" in segment.json()["error"]


def test_shared_reports_cannot_probe_personal_values(gov: Gov) -> None:
    admin = gov.bearer("admin")
    query = {"kind": "trends", "series": [{"event": "lesson_scheduled"}],
             "date_range": {"date_from": "2026-09-01", "date_to": "2026-09-05"},
             "filters": [{"property": "person.phone", "op": "between", "value": [13800000000, 13899999999]}]}
    report = gov.client.post("/api/v1/reports", json={"name": "phones 138", "query": query}, headers=admin).json()
    board = gov.client.post("/api/v1/dashboards", json={"name": "phones 138"}, headers=admin).json()
    gov.client.post(f"/api/v1/dashboards/{board['id']}/items", json={"report_id": report["id"]}, headers=admin)
    token = gov.client.post(f"/api/v1/dashboards/{board['id']}/share", json={"enabled": True},
                            headers=admin).json()["share_token"]
    response = gov.client.get(f"/api/v1/share/{token}/reports/{report['id']}")
    assert response.status_code == 403, response.text
    assert "person.phone" in response.json()["detail"]


def test_persons_search_matches_personal_identities_only_whole_without_personal_view(gov: Gov) -> None:
    """Searching persons by an identity prefix would reveal phone numbers digit by digit: without personal:view
    a personal identity (mobile, email, ...) is found only by its whole value; login ids still by prefix."""
    project = gov.platform.meta.create_project("School search")
    outcome = gov.platform.ingestor.ingest(project.project, [
        {"type": "track", "event": "page_view", "distinct_id": "13812345678", "distinct_id_type": "mobile",
         "time": "2026-09-01T08:00:00+08:00"},
        {"type": "track", "event": "page_view", "distinct_id": "carol", "distinct_id_type": "login_id",
         "time": "2026-09-01T08:00:00+08:00"}])
    assert outcome.rejected == 0, outcome.results
    gov.platform.flush()
    accounts = gov.platform.meta.accounts
    for role in Role:
        accounts.set_role(gov.users[role.value], project.project.id, role)

    def found(who: str, search: str) -> int:
        headers = {**gov.bearer(who), "X-EduPulse-Project": "School search"}
        response = gov.client.post("/api/v1/query", json={"kind": "persons", "search": search}, headers=headers)
        assert response.status_code == 200, response.text
        return len(response.json()["persons"])

    try:
        assert found("admin", "1381") == 1
        assert found("analyst", "1381") == 0
        assert found("viewer", "13812345678") == 1
        assert found("viewer", "car") == 1
    finally:  # the other tests' members belong to School A only
        for role in Role:
            accounts.set_role(gov.users[role.value], project.project.id, None)
