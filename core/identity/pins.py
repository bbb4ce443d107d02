"""PINs: the 4–6 digits a person confirms money movements with, and step-up tokens.

A PIN is stored argon2-hashed: it is long-lived and people reuse PINs (their MoMo or
bank card PIN), so even a stolen table with the secret key must not give it up cheaply.
What protects it in use is the lockout: 3 wrong tries lock it for 15 minutes, counted
alike whether the PIN was typed to the bot or to `POST /v1/auth/step-up`. Each lockout
that follows without a right PIN in between lasts twice as long, up to a day: a fixed
15 minutes would allow 288 guesses a day, forever, at a PIN that may be 4 digits; this
allows about 24 in the first day and 3 a day after.

A step-up token proves the PIN was confirmed in the last 5 minutes. Users' money-moving
API calls carry it (`X-Step-Up-Token`); it is opaque, stored as a keyed hash, and may be
used for several calls until it expires, in the session that confirmed the PIN only. It
ends early when that session is revoked (however: refresh-token reuse, a logout) or the
PIN changes: each use checks both.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, Integer, String, delete, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.crypto import keyed_hash, slow_hash, slow_verify
from core.db import Base, Statement, UnitOfWork, UTCDateTime, rowcount, utcnow
from core.errors import Forbidden, InvalidInput, InvalidState, RateLimited, Refused
from core.identity import users
from core.ids import new_id

PIN_FORMAT = re.compile(r"\A[0-9]{4,6}\Z")  # \Z: "$" would let a final newline through
MAX_FAILURES = 3
LOCKOUT = timedelta(minutes=15)  # the first; each next one doubles, up to MAX_LOCKOUT
MAX_LOCKOUT = timedelta(hours=24)
STEP_UP_TTL = timedelta(minutes=5)
STEP_UP_PREFIX = "sxs_"


class WrongPin(Refused):
    """A wrong PIN; `details.attempts_remaining` before the lockout."""

    code = "INVALID_PIN"


class PinLocked(RateLimited):
    """Too many wrong PINs: no PIN is accepted until `retry_after` seconds have passed."""

    code = "PIN_LOCKED"


class PinNotSet(InvalidState):
    code = "PIN_NOT_SET"


class UserPin(Base):
    __tablename__ = "user_pins"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    pin_hash: Mapped[str] = mapped_column(String(200))
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Lockouts since the last right PIN: the next one lasts lockout_after(lockouts + 1).
    lockouts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # 1 for the first PIN, one more for each change: a change writes only over the version
    # its current PIN was checked against.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StepUpToken(Base):
    __tablename__ = "step_up_tokens"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # stp_…
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    # The session whose PIN confirmation it proves, and the version of the PIN confirmed:
    # it serves no other session, and ends with its session and with a PIN change.
    session_id: Mapped[str] = mapped_column(ForeignKey("user_sessions.id"))
    pin_version: Mapped[int] = mapped_column(Integer)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


def check_format(pin, field: str = "pin") -> str:
    if not isinstance(pin, str) or not PIN_FORMAT.match(pin):
        raise InvalidInput(f"{field} must be 4 to 6 digits", field=field)
    return pin


def weakness(pin: str, phone_e164: str | None = None) -> str | None:
    """Why anyone would guess this PIN, in words for the person choosing it; None when
    nothing gives it away. The one rule for every way a PIN is chosen (the chat, POST
    /v1/auth/pin): the end of the person's own number (first: the most personal reason),
    one digit over and over (0000), digits that run up or down in even steps (1234,
    987654, 2468, 7890: also across 9 and 0), or a pair or three digits repeated (1212,
    121212, 123123). Lockouts limit guesses; this keeps the first few from being enough."""
    if phone_e164 and phone_e164.endswith(pin):
        return "it is the end of your phone number"
    digits = [int(c) for c in pin]
    steps = {b - a for a, b in zip(digits, digits[1:], strict=False)}
    if steps == {0}:
        return "it is the same digit over and over"
    if len(steps) == 1 or {step % 10 for step in steps} in ({1}, {9}):
        return "its digits run up or down, like 1234 or 2468"
    for size in (2, 3):
        if len(pin) % size == 0 and pin == pin[:size] * (len(pin) // size):
            return "it repeats the same digits, like 1212"
    return None


def check_strength(pin: str, phone_e164: str | None) -> str:
    """`pin` if nobody would guess it (`weakness`); else InvalidInput (field "pin") saying why."""
    reason = weakness(pin, phone_e164)
    if reason is not None:
        raise InvalidInput(f"that PIN is too easy to guess: {reason}", field="pin")
    return pin


def has_pin(uow: UnitOfWork, user_id: str) -> bool:
    return uow.session.get(UserPin, user_id) is not None


def lockout_after(lockouts: int) -> timedelta:
    """How long the `lockouts`-th lockout in a row lasts: 15 minutes, doubling, up to a day."""
    return min(LOCKOUT * 2 ** min(max(lockouts, 1) - 1, 10), MAX_LOCKOUT)


def _duration(span: timedelta) -> str:
    minutes = int(span.total_seconds()) // 60
    if minutes < 60:
        return f"{minutes} minutes"
    hours = minutes // 60
    return f"{hours} hour{'s' if hours != 1 else ''}"


def _judge(s: Session, user_id: str, pin: str, now: datetime) -> UserPin:
    """Check `pin` against the user's, counting a wrong one on the (locked) row.

    The third wrong try in a row locks the PIN (see lockout_after) and is answered
    PIN_LOCKED.
    """
    row = s.get(UserPin, user_id, with_for_update=True, populate_existing=True)
    if row is None:
        raise PinNotSet("set a PIN first")
    if row.locked_until is not None and row.locked_until > now:
        raise PinLocked("too many wrong PINs: try again later",
                        retry_after=int((row.locked_until - now).total_seconds()) + 1)
    if isinstance(pin, str) and PIN_FORMAT.match(pin) and slow_verify(row.pin_hash, pin):
        row.failed_attempts, row.locked_until, row.lockouts = 0, None, 0
        return row
    row.failed_attempts += 1
    if row.failed_attempts >= MAX_FAILURES:
        row.lockouts = (row.lockouts or 0) + 1
        span = lockout_after(row.lockouts)
        row.failed_attempts, row.locked_until = 0, now + span
        s.flush()
        raise PinLocked(f"wrong PIN, too many times: your PIN is locked for {_duration(span)}",
                        retry_after=int(span.total_seconds()))
    s.flush()
    left = MAX_FAILURES - row.failed_attempts
    raise WrongPin(f"wrong PIN; {left} {'try' if left == 1 else 'tries'} left before it locks",
                   details={"attempts_remaining": left})


def verify(uow: UnitOfWork, user_id: str, pin: str, *, now: datetime | None = None) -> None:
    """Accept the user's PIN or raise WrongPin, PinLocked or PinNotSet.

    A wrong try is written in `uow`: commit it even when this raises (the bot does, as it
    records its reply), or the try goes uncounted. Callers whose transaction rolls back
    on a refusal (the API) use `confirm` instead.
    """
    _judge(uow.session, user_id, pin, now or utcnow())


def confirm(rt, user_id: str, pin: str, *, now: datetime | None = None) -> int:
    """`verify` in a short transaction of its own, committed whatever the outcome; the
    version of the PIN it accepted.

    For callers whose own transaction rolls back with the refusal; call it before that
    transaction has begun (SQLite has one writer at a time).
    """
    with rt.uow() as own:
        try:
            return _judge(own.session, user_id, pin, now or utcnow()).version
        finally:
            own.commit()


def _current_pin_required() -> InvalidInput:
    return InvalidInput("a PIN is already set: send current_pin to change it", field="current_pin")


def set_pin(uow: UnitOfWork, user_id: str, pin: str, current_pin: str | None = None, *,
            rt=None, now: datetime | None = None) -> UserPin:
    """Set the user's PIN, or change it: then `current_pin` is required and checked. A PIN
    anyone would guess is refused first (`check_strength`: InvalidInput, field "pin").

    A wrong `current_pin` counts towards the lockout like any wrong PIN: with `rt` it is
    judged in a transaction of its own (see `confirm`), else in `uow` (see `verify`).

    Atomic, whatever runs at the same time: a first PIN is inserted only if there is none
    (of concurrent first sets one wins; the others are refused as a set without
    `current_pin` is once a PIN exists), and a change writes only over the version of the
    PIN `current_pin` was checked against (of concurrent changes one wins, the others
    raise InvalidState): no PIN is ever replaced without the current one, and never last
    write wins.
    """
    now = now or utcnow()
    check_format(pin)
    if rt is not None:
        with rt.uow() as peek:  # not in `uow`: it must not have begun before `confirm`
            exists = has_pin(peek, user_id)
            phone = users.get(peek, user_id).phone_number
    else:
        exists = has_pin(uow, user_id)
        phone = users.get(uow, user_id).phone_number
    # Refused before any PIN is judged: a weak new PIN costs no try of the current one.
    check_strength(pin, phone)
    if not exists:
        if not _insert_first(uow, user_id, slow_hash(pin), now):
            raise _current_pin_required()  # set meanwhile: as if it had been there all along
    else:
        if current_pin is None:
            raise _current_pin_required()
        if rt is not None:
            checked = confirm(rt, user_id, current_pin, now=now)
        else:
            checked = _judge(uow.session, user_id, current_pin, now).version
        new_hash = slow_hash(pin)  # before the write: the row stays locked no longer than it must
        changed = uow.session.execute(
            update(UserPin).where(UserPin.user_id == user_id, UserPin.version == checked)
            .values(pin_hash=new_hash, version=UserPin.version + 1, failed_attempts=0,
                    locked_until=None, lockouts=0, updated_at=now))
        if rowcount(changed) != 1:
            raise InvalidState("your PIN was changed while this request ran: send the PIN it is now as current_pin")
    row = uow.session.get(UserPin, user_id, populate_existing=True)
    assert row is not None
    return row


def _insert_first(uow: UnitOfWork, user_id: str, pin_hash: str, now: datetime) -> bool:
    """Insert the user's first PIN unless one exists (one statement: two racing are decided
    by the primary key, the second waiting for the first's commit)."""
    dialect = uow.session.get_bind().dialect.name
    insert = pg_insert(UserPin) if dialect == "postgresql" else sqlite_insert(UserPin)
    stmt = (insert.values(user_id=user_id, pin_hash=pin_hash, failed_attempts=0, lockouts=0,
                          version=1, created_at=now, updated_at=now)
            .on_conflict_do_nothing(index_elements=["user_id"]))
    return rowcount(uow.session.execute(stmt)) == 1


def _hash_step_up(secret_key: str, token: str) -> str:
    return keyed_hash(secret_key, "step-up", token)


def step_up(uow: UnitOfWork, rt, user_id: str, pin: str, *, session_id: str,
            now: datetime | None = None) -> tuple[str, int]:
    """Confirm the PIN for a step-up token: (token, seconds it lasts).

    The token serves only the session `session_id`, and only while the PIN confirmed is
    the user's PIN: it ends when the session is revoked or the PIN changes. The PIN is
    judged by `confirm`, so call this before `uow` has begun.
    """
    now = now or utcnow()
    version = confirm(rt, user_id, pin, now=now)
    token = STEP_UP_PREFIX + secrets.token_urlsafe(32)
    uow.session.add(StepUpToken(id=new_id("stp"), user_id=user_id, session_id=session_id,
                                pin_version=version, token_hash=_hash_step_up(rt.secret_key, token),
                                created_at=now, expires_at=now + STEP_UP_TTL))
    uow.session.flush()
    return token, int(STEP_UP_TTL.total_seconds())


# One read, joined on primary keys: the token, its session still live, its PIN still the PIN.
_LIVE_STEP_UP = Statement(
    "SELECT 1 FROM step_up_tokens t "
    "JOIN user_sessions s ON s.id = t.session_id AND s.revoked_at IS NULL "
    "JOIN user_pins p ON p.user_id = t.user_id AND p.version = t.pin_version "
    "WHERE t.token_hash = :token_hash AND t.user_id = :user_id AND t.session_id = :session_id "
    "AND t.expires_at > :now", now=UTCDateTime())


def check_step_up(uow: UnitOfWork, rt, user_id: str, session_id: str, token: str | None, *,
                  now: datetime | None = None) -> None:
    """Raise Forbidden (STEP_UP_REQUIRED) unless `token` is an unexpired step-up token of
    this user and session, the session is not revoked and the PIN has not changed since."""
    now = now or utcnow()
    if token and token.startswith(STEP_UP_PREFIX) and len(token) <= 200 and uow.run(
            _LIVE_STEP_UP, {"token_hash": _hash_step_up(rt.secret_key, token), "user_id": user_id,
                            "session_id": session_id, "now": now}):
        return
    raise Forbidden("confirm your PIN first: send the token from POST /v1/auth/step-up "
                    "as X-Step-Up-Token (it lasts 5 minutes)", code="STEP_UP_REQUIRED")


def purge_expired(uow: UnitOfWork, now: datetime | None = None) -> int:
    res = uow.session.execute(delete(StepUpToken).where(StepUpToken.expires_at <= (now or utcnow())))
    return rowcount(res)
