"""Logging in by WhatsApp code, keeping the session fresh, and the PIN behind money moves."""

from __future__ import annotations

from dataclasses import dataclass

from flask import request

from api.auth import NONE, USER
from api.blueprint import v1
from api.endpoint import endpoint
from api.schemas.auth import (
    LoginOut,
    OtpRequestedOut,
    PinOut,
    RefreshIn,
    RequestOtpIn,
    SetPinIn,
    StepUpIn,
    StepUpOut,
    TokensOut,
    VerifyOtpIn,
)
from core.identity import otp, pins, sessions


@dataclass
class _Login:
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int
    user: object


@endpoint(v1, "POST", "/auth/request-otp", auth=NONE, body=RequestOtpIn, response=OtpRequestedOut,
          status=202, tags=["Auth"], errors=[429])
def request_otp(ctx, body):
    """Send a 6-digit login code to the number by WhatsApp (valid 5 minutes).

    Rate limited per number and requesting network (3 per 15 minutes, 10 a day), per
    number from all networks (6 per 15 minutes, 20 a day) and per network (120 a
    minute): 429 `RATE_LIMITED` with `Retry-After`. A newer code replaces older ones.
    A code asked for here works only here, not in the WhatsApp chat, and the other way
    round.
    """
    phone = body["phone_number"]
    otp.issue(ctx.uow, ctx.runtime, phone, purpose=otp.API_LOGIN, ip=request.remote_addr)
    return {"phone_number": phone, "expires_in": int(otp.VALIDITY.total_seconds())}


@endpoint(v1, "POST", "/auth/verify-otp", auth=NONE, body=VerifyOtpIn, response=LoginOut,
          tags=["Auth"], errors=[422])
def verify_otp(ctx, body):
    """Log in with the code: a new session's tokens, and the user (created on first login).

    A wrong code is 422 `INVALID_CODE` (`details.attempts_remaining`); the fifth wrong
    try burns the code. An expired, replaced, used or burned code is 422 `CODE_EXPIRED`:
    request a new one. So is a code sent into the WhatsApp chat to log in there.
    """
    user = otp.verify(ctx.uow, ctx.runtime, body["phone_number"], body["code"], purpose=otp.API_LOGIN)
    t = sessions.start(ctx.uow, ctx.runtime, user.id)
    return _Login(t.access_token, t.refresh_token, t.token_type, t.expires_in, user)


@endpoint(v1, "POST", "/auth/refresh", auth=NONE, body=RefreshIn, response=TokensOut,
          tags=["Auth"], errors=[401])
def refresh(ctx, body):
    """Trade a refresh token for a new pair. Each refresh token works once.

    Presenting a spent refresh token ends its session (a copy of it is in other hands):
    401, and every token of that session stops working. To retry a refresh whose answer
    was lost, resend it with the same `X-Idempotency-Key`.
    """
    return sessions.refresh(ctx.uow, ctx.runtime, body["refresh_token"])


@endpoint(v1, "POST", "/auth/pin", auth=USER, body=SetPinIn, response=PinOut,
          tags=["Auth"], errors=[422, 429])
def set_pin(ctx, body):
    """Set your PIN (4–6 digits), or change it by also sending `current_pin`.

    A PIN anyone would guess (1234, 0000, 2468, 1212, the end of your own number) is 422
    `VALIDATION_ERROR` with `details.field` `pin`, the message saying why.

    A wrong `current_pin` is 422 `INVALID_PIN`; three wrong PINs in a row lock it for
    15 minutes (each next lockout without a right PIN between twice as long, up to a day):
    429 `PIN_LOCKED` with `Retry-After`.
    """
    row = pins.set_pin(ctx.uow, ctx.principal.user_id, body["pin"], body.get("current_pin"),
                       rt=ctx.runtime)
    return row


@endpoint(v1, "POST", "/auth/step-up", auth=USER, body=StepUpIn, response=StepUpOut,
          tags=["Auth"], errors=[409, 422, 429])
def step_up(ctx, body):
    """Confirm your PIN for a step-up token, good for 5 minutes of money moves in this
    session (it ends sooner if the session ends or the PIN changes).

    Send it as `X-Step-Up-Token` on transfers, gift-card purchases, bill payments and
    subscriptions. Wrong PIN: 422 `INVALID_PIN`; locked: 429 `PIN_LOCKED`; no PIN set
    yet: 409 `PIN_NOT_SET`.
    """
    token, ttl = pins.step_up(ctx.uow, ctx.runtime, ctx.principal.user_id, body["pin"],
                              session_id=ctx.principal.session_id)
    return {"step_up_token": token, "expires_in": ttl}
