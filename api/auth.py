"""Who is calling: a merchant API key or a user's access token, checked on every request.

Nothing is cached between requests, so a revoked key or session fails on the very
next request. A key costs one indexed lookup and one HMAC; no slow hash per request.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import request

from api.errors import ApiError
from core.db import UnitOfWork
from core.merchants import keys

KEY = "key"
USER = "user"
KEY_OR_USER = "key_or_user"
NONE = "none"


@dataclass
class Principal:
    kind: str  # "key" | "user" | "anonymous"
    merchant_id: str | None = None
    livemode: bool = False
    key_id: str | None = None
    key_prefix: str | None = None
    scopes: list[str] = field(default_factory=list)
    user_id: str | None = None
    session_id: str | None = None

    @property
    def idempotency_scope(self) -> str:
        if self.kind == "key":
            return f"mer:{self.merchant_id}:{'live' if self.livemode else 'test'}"
        if self.kind == "user":
            return f"usr:{self.user_id}"
        return "anon"


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def authenticate(uow: UnitOfWork, runtime, accepts: str) -> Principal:
    if accepts == NONE:
        return Principal(kind="anonymous")
    token = bearer_token()
    if token is None:
        raise ApiError(401, "UNAUTHORIZED", "send Authorization: Bearer <token>")
    # A valid token of the other kind is a role the route does not serve (403); a token
    # that is not valid at all is 401 whatever its kind.
    if token.startswith("sxm_"):
        key = keys.authenticate_key(uow, runtime.secret_key, token)
        if key is None:
            raise ApiError(401, "UNAUTHORIZED", "invalid or revoked API key")
        if accepts not in (KEY, KEY_OR_USER):
            raise ApiError(403, "FORBIDDEN", "this route takes a user's access token, not an API key")
        return Principal(kind="key", merchant_id=key.merchant_id, livemode=key.livemode,
                         key_id=key.id, key_prefix=key.prefix, scopes=key.scope_list)
    from core.identity import sessions

    found = sessions.authenticate_access_token(uow, runtime.settings, token)
    if found is None:
        raise ApiError(401, "UNAUTHORIZED", "invalid, expired or revoked access token")
    if accepts not in (USER, KEY_OR_USER):
        raise ApiError(403, "FORBIDDEN", "this route takes a merchant API key, not a user's access token")
    user_id, session_id = found
    return Principal(kind="user", user_id=user_id, session_id=session_id,
                     livemode=runtime.settings.user_mode_live)


def require_scope(principal: Principal, scope: str | None) -> None:
    if scope and principal.kind == "key" and scope not in principal.scopes:
        raise ApiError(403, "FORBIDDEN", f"this API key lacks the {scope} scope")


STEP_UP_HEADER = "X-Step-Up-Token"


def require_step_up(ctx) -> None:
    """A user's money move needs their PIN confirmed in the last 5 minutes (a step-up
    token from POST /v1/auth/step-up); a merchant key's scope is its authority already.

    Raises core.errors.Forbidden (403 STEP_UP_REQUIRED), which is not stored, so the
    same idempotency key may be retried with the token.
    """
    if ctx.principal.kind != "user":
        return
    from core.identity import pins

    pins.check_step_up(ctx.uow, ctx.runtime, ctx.principal.user_id, ctx.principal.session_id,
                       request.headers.get(STEP_UP_HEADER, "").strip() or None)
