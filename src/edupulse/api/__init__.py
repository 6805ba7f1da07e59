"""HTTP API: routers per resource, auth dependencies; no SQL here."""
