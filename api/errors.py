"""Every error the API can give, and the one place domain refusals become HTTP statuses."""

from __future__ import annotations

import logging

from flask import Flask
from werkzeug.exceptions import HTTPException

from api.envelope import error_body, respond
from core import errors as core_errors
from core.db import RETRY_AFTER, database_unavailable

log = logging.getLogger("soxara.api")


class ApiError(Exception):
    """A refusal decided by the web layer itself (malformed request, missing header...)."""

    def __init__(self, status: int, code: str, message: str, details: dict | None = None,
                 headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details
        self.headers = headers or {}


STATUS_BY_FAMILY: list[tuple[type, int]] = [
    (core_errors.InvalidInput, 422),
    (core_errors.NotFound, 404),
    (core_errors.Unauthorized, 401),
    (core_errors.Forbidden, 403),
    (core_errors.RateLimited, 429),
    (core_errors.InvalidState, 409),
    (core_errors.Refused, 422),
    (core_errors.UpstreamError, 502),
    (core_errors.Unavailable, 503),
]


def from_domain(e: core_errors.SoxaraError) -> ApiError:
    status = next((st for fam, st in STATUS_BY_FAMILY if isinstance(e, fam)), 500)
    headers = {}
    if isinstance(e, core_errors.RateLimited):
        headers["Retry-After"] = str(e.retry_after)
    return ApiError(status, e.code, e.message, e.details, headers)


def is_stored_outcome(e: core_errors.SoxaraError) -> bool:
    """A refusal by the operation itself: an idempotent retry replays it.

    Malformed, unauthenticated, forbidden and invalid requests were refused before the
    operation began; they are not stored, so a corrected retry may reuse its key.
    """
    return isinstance(e, (core_errors.Refused, core_errors.NotFound))


def unavailable(why: str) -> ApiError:
    """The 503 for a request the database could not serve (`core.db.database_unavailable`):
    nothing of it committed, and its idempotency key is free for the retry."""
    if why == "conflict":
        return ApiError(503, "SERVICE_UNAVAILABLE", "the request collided with another one; retry it with the "
                        "same X-Idempotency-Key", headers={"Retry-After": str(RETRY_AFTER["conflict"])})
    return ApiError(503, "SERVICE_UNAVAILABLE", "the database is unavailable; retry later with the same "
                    "X-Idempotency-Key", headers={"Retry-After": str(RETRY_AFTER["down"])})


def error_response(e: ApiError):
    return respond(e.status, error_body(e.code, e.message, e.details), e.headers)


HTTP_CODES = {
    400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED", 409: "CONFLICT", 413: "BAD_REQUEST", 415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMITED",
}


def install(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(e: ApiError):
        return error_response(e)

    @app.errorhandler(core_errors.SoxaraError)
    def _domain_error(e: core_errors.SoxaraError):
        return error_response(from_domain(e))

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException):
        status = e.code or 500
        if status == 413:
            # Not in the contract's table: a body over the limit is a malformed request.
            return error_response(ApiError(400, "BAD_REQUEST", "request body is too large (1 MB at most)"))
        code = HTTP_CODES.get(status, "INTERNAL_ERROR" if status >= 500 else "BAD_REQUEST")
        msg = {404: "no such route", 405: "method not allowed for this route"}.get(status, e.description or code)
        resp = error_response(ApiError(status, code, msg))
        allowed = getattr(e, "valid_methods", None)
        if status == 405 and allowed:
            resp.headers["Allow"] = ", ".join(allowed)
        return resp

    @app.errorhandler(Exception)
    def _bug(e: Exception):
        why = database_unavailable(e)
        if why is not None:
            # Not a bug: the error's class and first line, never its SQL and values.
            orig = getattr(e, "orig", None) or e
            log.warning("answered 503, the database %s: %s: %s", "conflict" if why == "conflict" else "down",
                        type(orig).__name__, str(orig).strip().splitlines()[0] if str(orig).strip() else "")
            return error_response(unavailable(why))
        log.exception("unhandled error")
        return error_response(ApiError(500, "INTERNAL_ERROR", "something went wrong on our side; the trace id identifies it"))
