"""The domain's refusals. Each carries a stable code that clients switch on.

The web layer maps each family to an HTTP status in one place (`api/errors.py`);
the bot turns them into a sentence. Nothing here knows about either.
"""

from __future__ import annotations


class SoxaraError(Exception):
    code = "INTERNAL_ERROR"

    def __init__(self, message: str, *, code: str | None = None, details: dict | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details


class InvalidInput(SoxaraError):
    """The values are well-formed but not acceptable (a bad phone, a bad currency...)."""

    code = "VALIDATION_ERROR"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None,
                 details: dict | None = None):
        d = dict(details or {})
        if field:
            d["field"] = field
        super().__init__(message, code=code, details=d or None)


class NotFound(SoxaraError):
    code = "NOT_FOUND"


class Unauthorized(SoxaraError):
    code = "UNAUTHORIZED"


class Forbidden(SoxaraError):
    code = "FORBIDDEN"


class RateLimited(SoxaraError):
    code = "RATE_LIMITED"

    def __init__(self, message: str, *, retry_after: int):
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))


class Refused(SoxaraError):
    """The operation ran and refused on business grounds (INSUFFICIENT_FUNDS, CLAIM_EXPIRED...).

    Unlike `InvalidInput`, such a refusal is an outcome: an idempotent retry replays it.
    """

    code = "REFUSED"


class InvalidState(Refused):
    code = "INVALID_STATE"


class InsufficientFunds(Refused):
    code = "INSUFFICIENT_FUNDS"


class UpstreamError(SoxaraError):
    code = "UPSTREAM_ERROR"


class Unavailable(SoxaraError):
    """What the request needs cannot serve it here and now (a rail that is off for live
    money). Not the caller's mistake, and not an outcome: a retry may succeed later."""

    code = "SERVICE_UNAVAILABLE"
