"""The bot's calls into core for messages, login codes and PINs, in one place.

The dialog never checks a code or a PIN itself, and never moves money: it asks core.
This module turns core's answers into the few outcomes a conversation cares about.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.identity import otp, pins
from core.messaging import outbox


def reply(uow, rt, phone: str, body: str) -> None:
    """Say something to the phone: stored (as the transcript's outbound line) with this
    transaction, delivered by a worker once it commits."""
    outbox.send_whatsapp(uow, rt, phone, body[: outbox.MAX_BODY])


# --- login codes -------------------------------------------------------------------------


def issue_code(uow, rt, phone: str) -> None:
    """Send a login code into the chat. Raises RateLimited.

    The chat's codes are its own (core.identity.otp.CHAT_LOGIN): the message asking for one comes
    from the phone's own WhatsApp, so only the phone spends their limit, and nothing
    asked for or guessed over the API replaces or burns them."""
    otp.issue(uow, rt, phone, purpose=otp.CHAT_LOGIN)


def code_waiting_since(uow, phone: str, now: datetime) -> datetime | None:
    """When the chat's login code still waiting to be typed was sent, if there is one."""
    return otp.waiting_since(uow, phone, purpose=otp.CHAT_LOGIN, now=now)


@dataclass(frozen=True)
class CodeVerdict:
    """core.identity.otp's judgement of a code typed into the chat."""

    user_id: str | None = None  # set when the code was right
    dead: bool = False          # expired, replaced, burned or used: a new one is needed
    attempts_remaining: int | None = None

    @property
    def ok(self) -> bool:
        return self.user_id is not None


def judge_code(uow, rt, phone: str, code: str) -> CodeVerdict:
    """Check a login code. core.identity.otp counts the try in a transaction of its own and spends
    a right code in `uow`, which must not have begun yet (SQLite has one writer)."""
    try:
        user = otp.verify(uow, rt, phone, code, purpose=otp.CHAT_LOGIN)
    except otp.InvalidCode as e:
        return CodeVerdict(attempts_remaining=(e.details or {}).get("attempts_remaining"),
                           dead=(e.details or {}).get("attempts_remaining") == 0)
    except otp.CodeExpired:
        return CodeVerdict(dead=True)
    return CodeVerdict(user_id=user.id)


# --- PINs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PinCheck:
    ok: bool
    tries_left: int | None = None
    locked_for: int | None = None  # seconds, when locked
    not_set: bool = False

    @property
    def locked(self) -> bool:
        return self.locked_for is not None


def pin_weakness(pin: str, phone: str) -> str | None:
    """Why anyone would guess this PIN (core's one rule), said as soon as it is typed."""
    return pins.weakness(pin, phone)


def has_pin(uow, user_id: str) -> bool:
    return pins.has_pin(uow, user_id)


def set_pin(uow, user_id: str, pin: str, current_pin: str | None = None) -> None:
    """Raises InvalidInput for a PIN core refuses, WrongPin / PinLocked for a wrong current one."""
    pins.set_pin(uow, user_id, pin, current_pin=current_pin)


def check_pin(uow, user_id: str, pin: str) -> PinCheck:
    """core.identity.pins' verdict. A wrong try is written in `uow` and counts towards the lockout
    only if `uow` commits, which the bot always does (it commits its reply), so this must
    never run inside a savepoint that is rolled back."""
    try:
        pins.verify(uow, user_id, pin)
    except pins.PinLocked as e:
        return PinCheck(False, 0, e.retry_after)
    except pins.WrongPin as e:
        return PinCheck(False, (e.details or {}).get("attempts_remaining"))
    except pins.PinNotSet:
        return PinCheck(False, not_set=True)
    return PinCheck(True)
