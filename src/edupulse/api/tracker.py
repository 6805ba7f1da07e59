"""The browser tracker: its script (/static/edupulse.js) and the ingestion endpoint it sends to, which takes the
write key in the query string because navigator.sendBeacon cannot set headers."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request, Response

from edupulse.api.auth import platform
from edupulse.api.errors import ErrorBody, refusals
from edupulse.api.ingest import INGEST_RESPONSES, error, ingest_request

router = APIRouter(tags=["collection: browser tracker"])
SCRIPT = Path(__file__).parent.parent / "web" / "static" / "edupulse.js"  # package data (pyproject)
CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "POST, OPTIONS",
        "Access-Control-Allow-Headers": "Content-Type", "Access-Control-Max-Age": "86400"}


@router.get("/static/edupulse.js", include_in_schema=False)
def tracker_script(request: Request) -> Response:
    cache = request.app.state.__dict__.setdefault("static_cache", {})
    if "edupulse.js" not in cache:
        cache["edupulse.js"] = SCRIPT.read_bytes()
    return Response(cache["edupulse.js"], media_type="application/javascript",
                    headers={"Cache-Control": "public, max-age=3600"})


@router.post("/api/v1/ingest/beacon",
             summary="The native batch with the write key as ?key= (for browsers; any content type, CORS open)",
             responses={**INGEST_RESPONSES, **refusals(401, model=ErrorBody, s401="Missing or unknown write key")})
async def beacon(request: Request, key: str | None = None) -> Response:
    if not key:
        response = error(401, "send the project's write key as ?key=<write key>")
    else:
        project = platform(request).catalog.by_write_key(key)
        if project is None:
            response = error(401, "unknown write key: check the key shown by 'edupulse project create'")
        else:
            response = await ingest_request(request, project)
    response.headers.update(CORS)
    return response


@router.options("/api/v1/ingest/beacon", include_in_schema=False)
def beacon_preflight() -> Response:
    return Response(status_code=204, headers=CORS)
