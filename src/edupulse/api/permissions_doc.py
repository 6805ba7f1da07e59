"""docs/permissions.md, generated from the permission matrix (edupulse.auth.permissions) and the app's routes:
`python -m edupulse.api.permissions_doc > docs/permissions.md` (a test keeps the file equal to it)."""

from __future__ import annotations

from edupulse.api.app import create_app
from edupulse.api.auth import route_permissions, takes_write_key
from edupulse.auth.permissions import render_markdown
from edupulse.conf import Settings


def documented_routes() -> str:
    """The whole docs/permissions.md, from the app's routes."""
    app = create_app(Settings())
    rows = [r for r in route_permissions(app) if r[1] not in ("/openapi.json", "/docs", "/redoc",
                                                               "/docs/oauth2-redirect")]
    public = {path: "the project's write key" for _, path, _, _ in rows if takes_write_key(app, path)}
    signed_in = ("/api/v1/auth/logout", "/api/v1/auth/logout-everywhere", "/api/v1/auth/me")
    public.update(dict.fromkeys(signed_in, "signed in (any role)"))
    public.update(dict.fromkeys(("/static/edupulse.js", "/xapi/about"), "public (no key)"))
    public["/xapi/statements"] = "the project's write key (reading: with the secret API key as the password)"
    for path in ("/xapi/activities/state", "/xapi/activities/profile", "/xapi/agents/profile", "/xapi/agents",
                 "/xapi/activities"):
        public[path] = "the project's write key with its secret API key as the password"
    return render_markdown(rows, public)


if __name__ == "__main__":  # pragma: no cover
    print(documented_routes(), end="")
