"""The JSON the bot's own HTTP routes answer with (the sandbox pages, a webhook refusal):
the contract's envelope, `{"success": true, "data": …}` or `{"success": false, "error":
{"code", "message", "details"?}}`. The bot is a way in of its own beside the API
(docs/architecture.md): it writes the same shape without importing api/."""

from __future__ import annotations

import json

from flask import Response


def _json(status: int, payload: dict, headers: dict | None = None) -> Response:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return Response(body, status=status, mimetype="application/json", headers=headers)


def ok(data) -> Response:
    return _json(200, {"success": True, "data": data})


def refused(status: int, code: str, message: str, details: dict | None = None, *,
            headers: dict | None = None) -> Response:
    error: dict = {"code": code, "message": message}
    if details:
        error["details"] = details
    return _json(status, {"success": False, "error": error}, headers)
