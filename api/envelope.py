"""The response envelope: `{"success": true, "data": …}` or `{"success": false, "error": …}`."""

from __future__ import annotations

import json

from flask import Response

from core.tracing import current_trace_id


def dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def success_body(data) -> bytes:
    return dumps({"success": True, "data": data})


def error_body(code: str, message: str, details: dict | None = None) -> bytes:
    err: dict = {"code": code, "message": message}
    if details:
        err["details"] = details
    return dumps({"success": False, "error": err})


def respond(status: int, body: bytes, headers: dict | None = None) -> Response:
    resp = Response(body, status=status, mimetype="application/json")
    resp.headers["X-Trace-Id"] = current_trace_id()
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp
