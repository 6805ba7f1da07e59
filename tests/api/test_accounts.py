"""Sign-in and sessions: cookie flags, session fixation, CSRF, brute force and lockout, sign-out everywhere,
admin password reset, legacy password hashes, the append-only audit log, metric changes reaching saved
queries."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

from edupulse.api.accounts import LoginLimiter
from edupulse.auth.permissions import Role
from gov_fixtures import PASSWORD, Gov, TestClient


def new_user(gov: Gov, name: str, role: Role = Role.analyst) -> int:
    accounts = gov.platform.meta.accounts
    user = accounts.create_user(f"{name}@school.example", PASSWORD)
    accounts.set_role(user.id, gov.a.id, role)
    return user.id


def login(gov: Gov, email: str, password: str = PASSWORD, client: TestClient | None = None) -> Any:
    client = client or TestClient(gov.client.app)
    return client, client.post("/api/v1/auth/login", json={"email": email, "password": password})


def test_session_cookie_flags(gov: Gov) -> None:
    new_user(gov, "cookie")
    _, response = login(gov, "cookie@school.example")
    assert response.status_code == 200
    cookie = response.headers["set-cookie"]
    assert "edupulse_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie or "samesite=lax" in cookie.lower()
    assert "Secure" not in cookie  # plain HTTP here; auto sets it behind HTTPS
    https = TestClient(gov.client.app, base_url="https://testserver")
    _, secure = login(gov, "cookie@school.example", client=https)
    assert "Secure" in secure.headers["set-cookie"]


def test_session_fixation(gov: Gov) -> None:
    new_user(gov, "fixation")
    client = TestClient(gov.client.app)
    client.cookies.set("edupulse_session", "attacker-chosen-value")
    assert client.get("/api/v1/auth/me").status_code == 401  # an unknown token is no session
    _, response = login(gov, "fixation@school.example", client=client)
    issued = response.cookies.get("edupulse_session")
    assert issued
    assert issued != "attacker-chosen-value"
    # signing in again from a browser that has a session replaces it, and the old token stops working
    client.cookies.set("edupulse_session", issued)
    _, again = login(gov, "fixation@school.example", client=client)
    second = again.cookies.get("edupulse_session")
    assert second
    assert second != issued
    stale = TestClient(gov.client.app)
    stale.cookies.set("edupulse_session", issued)
    assert stale.get("/api/v1/auth/me").status_code == 401


def test_csrf_on_state_changing_cookie_requests(gov: Gov) -> None:
    new_user(gov, "csrf")
    client, response = login(gov, "csrf@school.example")
    token = response.json()["csrf_token"]
    query = {"kind": "trends", "series": [{"event": "lesson_scheduled"}]}
    assert client.get("/api/v1/metrics").status_code == 200  # safe methods need no token
    assert client.post("/api/v1/query", json=query).status_code == 403
    assert client.post("/api/v1/query", json=query, headers={"X-CSRF-Token": "wrong"}).status_code == 403
    assert client.post("/api/v1/query", json=query, headers={"X-CSRF-Token": token}).status_code == 200
    assert client.post("/api/v1/auth/logout").status_code == 403  # sign-out too: no forced logouts
    # a form post carries the token as a field
    form = client.post("/api/v1/auth/logout", data={"csrf_token": token})
    assert form.status_code == 200
    assert client.get("/api/v1/auth/me").status_code == 401


def test_brute_force_locks_the_account(gov: Gov) -> None:
    new_user(gov, "brute")
    email = "brute@school.example"
    start = gov.clock[0]
    try:
        for attempt in range(5):
            _, response = login(gov, email, "wrong password " + str(attempt))
            assert response.status_code == 401, response.text
        assert "locked" in response.json()["detail"]
        _, locked = login(gov, email)  # even the right password is refused while locked
        assert locked.status_code == 429
        assert "locked until" in locked.json()["detail"]
        gov.clock[0] = start + dt.timedelta(minutes=16)
        _, opened = login(gov, email)
        assert opened.status_code == 200
    finally:
        gov.clock[0] = start
    failed = gov.platform.meta.audit.entries(__import__("edupulse.meta.audit", fromlist=["AuditFilter"]).AuditFilter(
        target=email, action="auth."))
    actions = [e["action"] for e in failed]
    assert actions.count("auth.sign_in_failed") == 4
    assert "auth.locked" in actions
    assert "auth.sign_in" in actions


def test_sign_in_attempts_are_limited_per_address(gov: Gov) -> None:
    app = gov.client.app
    saved = app.state.login_limiter
    app.state.login_limiter = LoginLimiter(3)
    try:
        codes = [login(gov, "nobody@school.example", "x" * 12)[1].status_code for _ in range(4)]
    finally:
        app.state.login_limiter = saved
    assert codes == [401, 401, 401, 429]


def test_unknown_and_wrong_passwords_answer_alike(gov: Gov) -> None:
    _, unknown = login(gov, "ghost@school.example")
    new_user(gov, "alike")
    _, wrong = login(gov, "alike@school.example", "not the password")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()


def test_sign_out_everywhere_and_admin_password_reset(gov: Gov) -> None:
    user_id = new_user(gov, "everywhere")
    first, r1 = login(gov, "everywhere@school.example")
    second, _ = login(gov, "everywhere@school.example")
    assert first.post("/api/v1/auth/logout-everywhere", headers={"X-CSRF-Token": r1.json()["csrf_token"]}
                      ).json()["sessions_ended"] == 2
    assert first.get("/api/v1/auth/me").status_code == 401
    assert second.get("/api/v1/auth/me").status_code == 401
    third, _ = login(gov, "everywhere@school.example")
    admin = gov.bearer("admin")
    weak = gov.client.post(f"/api/v1/users/{user_id}/password", json={"password": "short"}, headers=admin)
    assert weak.status_code == 400
    assert "at least" in weak.json()["detail"]
    reset = gov.client.post(f"/api/v1/users/{user_id}/password", json={"password": "a new long passphrase"},
                            headers=admin)
    assert reset.status_code == 200
    assert third.get("/api/v1/auth/me").status_code == 401
    assert login(gov, "everywhere@school.example")[1].status_code == 401
    assert login(gov, "everywhere@school.example", "a new long passphrase")[1].status_code == 200
    # an admin of project A cannot reset the password of a user outside it
    outsider = gov.users["viewer_b"]
    assert gov.client.post(f"/api/v1/users/{outsider}/password", json={"password": "x" * 12},
                           headers=admin).status_code == 404


def test_disabled_accounts_and_their_keys_stop(gov: Gov) -> None:
    from edupulse.auth.permissions import Scope

    user_id = new_user(gov, "disabled")
    key, _ = gov.platform.meta.accounts.create_key(user_id, "k", frozenset({Scope.query}))
    client, _ = login(gov, "disabled@school.example")
    assert gov.client.post(f"/api/v1/users/{user_id}/disable", headers=gov.bearer("admin")).json()["changed"]
    assert client.get("/api/v1/auth/me").status_code == 401
    assert gov.client.get("/api/v1/metrics", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    _, refused = login(gov, "disabled@school.example")
    assert refused.status_code == 401
    assert "disabled" in refused.json()["detail"]
    gov.client.post(f"/api/v1/users/{user_id}/enable", headers=gov.bearer("admin"))
    assert login(gov, "disabled@school.example")[1].status_code == 200


def test_members_api_changes_roles_and_audits(gov: Gov) -> None:
    admin = gov.bearer("admin")
    created = gov.client.post("/api/v1/users", json={"email": "New.Member@School.example", "password": PASSWORD,
                                                     "role": "viewer"}, headers=admin)
    assert created.status_code == 201, created.text
    user_id = created.json()["id"]
    bad = gov.client.put(f"/api/v1/users/{user_id}/role", json={"role": "owner"}, headers=admin)
    assert bad.status_code == 400
    assert "unknown role" in bad.json()["detail"]
    changed = gov.client.put(f"/api/v1/users/{user_id}/role", json={"role": "analyst"}, headers=admin).json()
    assert changed == {"user_id": user_id, "role": "analyst", "before": "viewer"}
    members = gov.client.get("/api/v1/users", headers=admin).json()["users"]
    assert any(u["email"] == "new.member@school.example" and u["role"] == "analyst" for u in members)
    log = gov.client.get("/api/v1/audit", params={"action": "user.", "target": "new.member@school.example"},
                         headers=admin).json()["entries"]
    assert [e["action"] for e in log][:2] == ["user.role", "user.role"]
    assert log[0]["detail"] == {"before": "viewer", "after": "analyst"}
    assert log[0]["actor"] == "admin@school.example (key pk_" + gov.keys["admin"][3:10] + ")"
    # project admins read their project's log only
    assert gov.client.get("/api/v1/audit", params={"everything": "true"}, headers=admin).status_code == 403


def test_audit_log_is_append_only(gov: Gov) -> None:
    meta = gov.platform.meta
    entry = meta.audit.record("export", "tests", target="report 1")
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), meta.engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_log SET actor = 'someone else' WHERE id = :id"), {"id": entry})
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), meta.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_log WHERE id = :id"), {"id": entry})
    assert not any(hasattr(meta.audit, name) for name in ("update", "delete", "remove", "clear"))
    assert meta.audit.entries(__import__("edupulse.meta.audit", fromlist=["AuditFilter"]).AuditFilter(
        target="report 1"))[0]["actor"] == "tests"


def test_legacy_scrypt_hashes_verify_and_are_upgraded(gov: Gov) -> None:
    import hashlib

    from edupulse.meta.models import User

    salt = bytes(range(16))
    legacy = f"scrypt${salt.hex()}${hashlib.scrypt(PASSWORD.encode(), salt=salt, n=2**14, r=8, p=1).hex()}"
    user_id = new_user(gov, "legacy")
    with gov.platform.meta.session() as s, s.begin():
        row = s.get(User, user_id)
        assert row is not None
        row.password_hash = legacy
    assert login(gov, "legacy@school.example")[1].status_code == 200
    with gov.platform.meta.session() as s:
        row = s.get(User, user_id)
        assert row is not None
        assert row.password_hash.startswith("$argon2id$")
    assert login(gov, "legacy@school.example")[1].status_code == 200


def test_sign_in_page_works_without_javascript(gov: Gov) -> None:
    new_user(gov, "page")
    client = TestClient(gov.client.app)
    page = client.get("/login")
    assert page.status_code == 200
    assert '<form method="post" action="/login">' in page.text
    wrong = client.post("/login", data={"email": "page@school.example", "password": "nope nope nope"},
                        headers={"Accept-Language": "en"})
    assert wrong.status_code == 401
    assert "Wrong email or password" in wrong.text
    assert "邮箱或密码错误" in client.post("/login", data={"email": "page@school.example", "password": "x"},
                                          headers={"Accept-Language": "zh-CN"}).text
    foreign = client.post("/login", data={"email": "page@school.example", "password": PASSWORD},
                          headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403
    ok = client.post("/login", data={"email": "page@school.example", "password": PASSWORD}, follow_redirects=False)
    assert ok.status_code == 303
    assert "HttpOnly" in ok.headers["set-cookie"]
    assert client.get("/api/v1/auth/me").json()["user"]["email"] == "page@school.example"
