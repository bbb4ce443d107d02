"""One-time login codes sent by WhatsApp.

A code is 6 random digits, valid for 5 minutes, and only the newest one for a phone (and
purpose) counts. It is stored argon2-hashed: the attempt limit (5 wrong tries burn the
code) is what protects it in use, and the slow hash means that even a stolen table
together with the secret key does not give up live codes faster than they expire.

A code belongs to where it was asked for, its purpose: `API_LOGIN` over
`POST /v1/auth/request-otp`, by anyone, or `CHAT_LOGIN` by a message from the phone's own
WhatsApp (signed by Twilio, so it proves possession of that account). A code is judged
only where it was asked for, replaces only codes of its own purpose, and spends only
that purpose's limits: who asks decides whose budget is spent, so nothing asked for over
the API (codes, wrong guesses) can keep a person's own chat from logging them in.

The API's limits (docs/auth.md has the table): per number and requesting network, so
that one network cannot spend a number's codes for everyone else; per number across
every network, a ceiling on what a number can be sent and guessed at; and per network,
loosely: a carrier-grade NAT puts a whole town behind one address, so that limit only
stops a single machine from spraying codes at thousands of numbers (each one costs a
WhatsApp message). The chat's limit is the phone's own: it only keeps a person (or a
stuck client) from making the bot spray them with codes.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import Index, Integer, String, delete, select, update
from sqlalchemy.orm import Mapped, mapped_column

from core import ratelimit
from core.crypto import slow_hash, slow_verify
from core.db import Base, UnitOfWork, UTCDateTime, rowcount, utcnow
from core.errors import Refused
from core.identity import users
from core.identity.users import User
from core.ids import new_id
from core.messaging import outbox

CODE_DIGITS = 6
VALIDITY = timedelta(minutes=5)
MAX_ATTEMPTS = 5
API_LOGIN = "login"        # asked for over the API: anyone may have asked
CHAT_LOGIN = "chat_login"  # asked for in the chat, by the phone's own WhatsApp
PURPOSES = (API_LOGIN, CHAT_LOGIN)

_TOO_MANY = "too many codes requested for this phone number"
# Per number, spent by whoever asks for that purpose.
PHONE_RULES = {
    # Only the phone itself can ask in the chat, and nobody else can type there: this
    # is about not spraying a person with codes, not about guessing.
    CHAT_LOGIN: (
        ratelimit.Rule("otp-chat", 3, timedelta(minutes=15), _TOO_MANY),
        ratelimit.Rule("otp-chat-day", 30, timedelta(hours=24), _TOO_MANY + " today"),
    ),
    # Every network together: at most 20 codes (100 guesses) at a number a day.
    API_LOGIN: (
        ratelimit.Rule("otp-phone", 6, timedelta(minutes=15), _TOO_MANY),
        ratelimit.Rule("otp-phone-day", 20, timedelta(hours=24), _TOO_MANY + " today"),
    ),
}
# Per number and requesting network (API only): one network gets half of the ceiling
# above, so it cannot spend a number's codes for the owner asking from elsewhere.
NETWORK_RULES = (
    ratelimit.Rule("otp-phone-net", 3, timedelta(minutes=15), _TOO_MANY),
    ratelimit.Rule("otp-phone-net-day", 10, timedelta(hours=24), _TOO_MANY + " today"),
)
# At least 60 distinct phones a minute must get through from one address (CGNAT).
IP_RULE = ratelimit.Rule("otp-ip", 120, timedelta(minutes=1),
                         "too many codes requested from this network")


class InvalidCode(Refused):
    """A wrong code; the code stays valid while tries remain (`details.attempts_remaining`)."""

    code = "INVALID_CODE"


class CodeExpired(Refused):
    """No valid code: expired, replaced by a newer one, burned by wrong tries, or never sent."""

    code = "CODE_EXPIRED"


class OtpCode(Base):
    __tablename__ = "otp_codes"
    __table_args__ = (Index("ix_otp_codes_phone", "phone_number", "purpose", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # otp_…
    phone_number: Mapped[str] = mapped_column(String(20))
    purpose: Mapped[str] = mapped_column(String(20))
    code_hash: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(12))  # active | used | burned | superseded
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


def new_code() -> str:
    return "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))


def message_for(code: str, purpose: str) -> str:
    minutes = int(VALIDITY.total_seconds() // 60)
    if purpose == CHAT_LOGIN:
        return (f"Your Soxara code is {code}. It expires in {minutes} minutes. "
                "Never share it: Soxara staff will never ask for it.")
    # Someone else may have asked for it: say where it goes, so it is not typed here.
    return (f"Your Soxara app login code is {code}. Type it in the app, not in this chat. "
            f"It expires in {minutes} minutes. Didn't ask for it? Ignore this message. "
            "Never share it: Soxara staff will never ask for it.")


def issue(uow: UnitOfWork, rt, phone_e164: str, *, purpose: str, ip: str | None = None,
          now: datetime | None = None) -> OtpCode:
    """Send a fresh code for `purpose` to the phone by WhatsApp; older codes for that
    purpose stop working (those of the other purpose are left alone).

    Two issues at once for one number are put in order by its rate-limit counters (the
    upsert holds the counter's row until commit), except when every counter starts a new
    window at once: then this one's supersede may miss the other's code, left active.
    `verify` judges only the newest code, so that changes nothing.

    `ip`: the requester's address, for requests over the API. Raises RateLimited (with
    `retry_after`); a refused request is not counted.
    """
    if purpose not in PURPOSES:
        raise ValueError(f"unknown OTP purpose {purpose!r}")
    now = now or utcnow()
    number = f"{purpose}:{phone_e164}"
    for rule in PHONE_RULES[purpose]:
        ratelimit.hit(uow, rt.secret_key, rule, number, now=now)
    if ip:
        network = ratelimit.network_of(ip)
        for rule in NETWORK_RULES:
            ratelimit.hit(uow, rt.secret_key, rule, f"{number}\0{network}", now=now)
        ratelimit.hit(uow, rt.secret_key, IP_RULE, network, now=now)
    # Hashed only once the limits let the request through, so that a flood of refused
    # requests costs no argon2 work.
    code = new_code()
    code_hash = slow_hash(code)
    s = uow.session
    s.execute(
        update(OtpCode)
        .where(OtpCode.phone_number == phone_e164, OtpCode.purpose == purpose,
               OtpCode.status == "active")
        .values(status="superseded")
    )
    row = OtpCode(id=new_id("otp"), phone_number=phone_e164, purpose=purpose, code_hash=code_hash,
                  status="active", failed_attempts=0, created_at=now, expires_at=now + VALIDITY)
    s.add(row)
    s.flush()
    outbox.send_whatsapp(uow, rt, phone_e164, message_for(code, purpose), sensitive=[code], now=now)
    return row


def waiting_since(uow: UnitOfWork, phone_e164: str, *, purpose: str,
                  now: datetime | None = None) -> datetime | None:
    """When the phone's code for `purpose` was sent, while it can still be typed (not
    expired, used, replaced or burned); None when there is no such code."""
    return uow.session.scalar(
        select(OtpCode.created_at)
        .where(OtpCode.phone_number == phone_e164, OtpCode.purpose == purpose,
               OtpCode.status == "active", OtpCode.expires_at > (now or utcnow()))
        .order_by(OtpCode.created_at.desc()).limit(1)
    )


def check(row: OtpCode | None, code: str, now: datetime) -> None:
    """Judge one try against the phone's newest active code, counting it on `row`.

    Raises CodeExpired or InvalidCode; returns when the code is right.
    """
    if row is None or row.status != "active":
        raise CodeExpired("no valid code for this number: request a new one")
    if row.expires_at <= now:
        raise CodeExpired("this code has expired: request a new one")
    if row.failed_attempts >= MAX_ATTEMPTS:
        raise CodeExpired("too many wrong tries: request a new code")
    if slow_verify(row.code_hash, code):
        return
    row.failed_attempts += 1
    left = MAX_ATTEMPTS - row.failed_attempts
    if left <= 0:
        row.status = "burned"
    raise InvalidCode("that code is not right" + ("" if left else "; request a new one"),
                      details={"attempts_remaining": left})


def verify(uow: UnitOfWork, rt, phone_e164: str, code: str, *, purpose: str,
           now: datetime | None = None) -> User:
    """The user behind this phone (created on first login), if `code` is its valid code
    for `purpose` (a code asked for in the chat is no good over the API, and the other
    way round).

    Each try is judged and counted in a short transaction of its own, committed whatever
    the outcome: the refusal rolls the caller's transaction back, and a wrong try must
    stay counted. The code's row is locked meanwhile, so concurrent guesses are judged
    one after another and never more than 5 are ever compared. Call this before `uow`
    has begun (SQLite has one writer at a time).
    Raises InvalidCode (tries remain) or CodeExpired (request a new code).
    """
    now = now or utcnow()
    with rt.uow() as own:
        # The newest code, whatever its status: an older one that two requests at once left
        # active (see `issue`) is never judged, also once the newest is used or burned.
        row = own.session.scalar(
            select(OtpCode)
            .where(OtpCode.phone_number == phone_e164, OtpCode.purpose == purpose)
            .order_by(OtpCode.created_at.desc()).limit(1).with_for_update()
        )
        try:
            check(row, code, now)
        finally:
            own.commit()
        assert row is not None
        code_id = row.id
    # Spent in the caller's transaction, with the session it starts: one winner even if
    # the right code arrives twice at once.
    spent = uow.session.execute(
        update(OtpCode).where(OtpCode.id == code_id, OtpCode.status == "active")
        .values(status="used", used_at=now)
    )
    if rowcount(spent) != 1:
        raise CodeExpired("this code was already used: request a new one")
    return users.get_or_create(uow, phone_e164)


def purge_expired(uow: UnitOfWork, now: datetime | None = None) -> int:
    """Forget codes a day after they expired (kept that long for support's questions)."""
    res = uow.session.execute(delete(OtpCode).where(OtpCode.expires_at <= (now or utcnow()) - timedelta(days=1)))
    return rowcount(res)
