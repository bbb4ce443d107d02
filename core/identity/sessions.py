"""User sessions: short-lived access tokens and rotating refresh tokens.

A login starts a session. The access token is a JWT (HS256, under a key derived from
SOXARA_SECRET_KEY) naming the user and the session, good for 15 minutes; every request
also checks that the session is not revoked, so a revocation holds from the very next
request. The refresh token is opaque, 256 random bits, stored only as a keyed hash,
and works once: refreshing spends it and returns a new pair. Presenting a spent one
means two parties hold the token (a thief and its owner), so the whole session is
revoked and both must log in again. A client that retries a refresh whose answer it
lost must reuse its X-Idempotency-Key, which replays the answer instead.
"""

from __future__ import annotations

import functools
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from sqlalchemy import ForeignKey, String, delete, select, update
from sqlalchemy.orm import Mapped, mapped_column

from core.crypto import derive_key, keyed_hash
from core.db import Base, Statement, UnitOfWork, UTCDateTime, rowcount, utcnow
from core.errors import Unauthorized
from core.ids import new_id

ACCESS_TTL = timedelta(minutes=15)
REFRESH_TTL = timedelta(days=30)  # renewed by each refresh: a month of not opening the app
ALGORITHM = "HS256"
REFRESH_PREFIX = "sxr_"


class UserSession(Base):
    __tablename__ = "user_sessions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # ses_…
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # When the session last logged in or refreshed (authenticating a request writes nothing).
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)


class RefreshToken(Base):
    __tablename__ = "refresh_tokens"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # rft_…
    session_id: Mapped[str] = mapped_column(ForeignKey("user_sessions.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    replaced_by: Mapped[str | None] = mapped_column(String(40), nullable=True)


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    session_id: str
    user_id: str
    expires_in: int = int(ACCESS_TTL.total_seconds())
    token_type: str = "Bearer"


def _signing_key(secret_key: str) -> bytes:
    return derive_key(secret_key, "access-token")


def _hash_refresh(secret_key: str, token: str) -> str:
    return keyed_hash(secret_key, "refresh-token", token)


def access_token(secret_key: str, user_id: str, session_id: str, now: datetime) -> str:
    # `jti` only makes every token distinct (two minted in one second would be equal).
    claims = {"sub": user_id, "sid": session_id, "typ": "access", "jti": secrets.token_hex(8),
              "iat": int(now.timestamp()), "exp": int((now + ACCESS_TTL).timestamp())}
    return jwt.encode(claims, _signing_key(secret_key), algorithm=ALGORITHM)


def _mint(uow: UnitOfWork, secret_key: str, session: UserSession, now: datetime) -> tuple[RefreshToken, Tokens]:
    secret = REFRESH_PREFIX + secrets.token_urlsafe(32)
    row = RefreshToken(id=new_id("rft"), session_id=session.id, token_hash=_hash_refresh(secret_key, secret),
                       created_at=now, expires_at=now + REFRESH_TTL)
    uow.session.add(row)
    tokens = Tokens(access_token=access_token(secret_key, session.user_id, session.id, now),
                    refresh_token=secret, session_id=session.id, user_id=session.user_id)
    return row, tokens


def start(uow: UnitOfWork, rt, user_id: str, *, now: datetime | None = None) -> Tokens:
    """A new session for the user (a login): its first access and refresh tokens."""
    now = now or utcnow()
    session = UserSession(id=new_id("ses"), user_id=user_id, created_at=now, last_used_at=now)
    uow.session.add(session)
    uow.session.flush()
    _, tokens = _mint(uow, rt.secret_key, session, now)
    uow.session.flush()
    return tokens


def refresh(uow: UnitOfWork, rt, refresh_token: str, *, now: datetime | None = None) -> Tokens:
    """Spend a refresh token for a new pair. Raises Unauthorized if it is unknown, expired,
    of a revoked session, or spent, in which last case the session is revoked too."""
    now = now or utcnow()
    s = uow.session
    if not refresh_token or not refresh_token.startswith(REFRESH_PREFIX) or len(refresh_token) > 200:
        raise Unauthorized("invalid refresh token")
    # Locked: of two refreshes with one token, the second waits and then sees it spent.
    row = s.scalar(select(RefreshToken)
                   .where(RefreshToken.token_hash == _hash_refresh(rt.secret_key, refresh_token))
                   .with_for_update())
    if row is None:
        raise Unauthorized("invalid refresh token")
    session = s.get(UserSession, row.session_id)
    if session is None or session.revoked_at is not None:
        raise Unauthorized("this session has ended: log in again")
    if row.used_at is not None:
        _revoke_and_refuse(uow, rt, session.id, now)
    if row.expires_at <= now:
        raise Unauthorized("this refresh token has expired: log in again")
    new_row, tokens = _mint(uow, rt.secret_key, session, now)
    row.used_at, row.replaced_by = now, new_row.id
    session.last_used_at = now
    s.flush()
    return tokens


def _revoke_and_refuse(uow: UnitOfWork, rt, session_id: str, now: datetime):
    # The refusal rolls the caller's transaction back, yet the revocation must stand: it
    # gets a transaction of its own. Rolling the caller back first (it holds nothing but
    # reads) frees SQLite's single write lock for it.
    uow.rollback()
    with rt.uow() as own:
        revoke(own, session_id, reason="refresh_token_reused", now=now)
        own.commit()
    raise Unauthorized("this refresh token was already used: the session is ended, log in again")


def revoke(uow: UnitOfWork, session_id: str, *, reason: str = "logout",
           now: datetime | None = None) -> bool:
    """End a session: its access tokens fail from the very next request. False if already ended."""
    res = uow.session.execute(
        update(UserSession).where(UserSession.id == session_id, UserSession.revoked_at.is_(None))
        .values(revoked_at=now or utcnow(), revoked_reason=reason[:40])
    )
    return rowcount(res) == 1


def decode_access_token(secret_key: str, token: str) -> tuple[str, str] | None:
    """(user_id, session_id) from a well-signed, unexpired access token, else None."""
    verified = _verified(secret_key, token)
    if verified is None or verified[2] <= time.time():
        return None
    return verified[0], verified[1]


@functools.lru_cache(maxsize=4096)
def _verified(secret_key: str, token: str) -> tuple[str, str, float] | None:
    """(user_id, session_id, expiry) of a well-signed access token, expired or not.

    A token's signature is checked once per process, not on each of its requests (a
    client sends the same token for its 15 minutes): the answer for a given string
    never changes. The expiry is checked on every call, and revocation in the database.
    """
    try:
        claims = jwt.decode(token, _signing_key(secret_key), algorithms=[ALGORITHM],
                            options={"require": ["exp", "sub", "sid", "typ"], "verify_exp": False})
    except jwt.PyJWTError:
        return None
    sub, sid, exp = claims.get("sub"), claims.get("sid"), claims.get("exp")
    if claims.get("typ") != "access" or not isinstance(sub, str) or not isinstance(sid, str) \
            or isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    return sub, sid, float(exp)


_LIVE_SESSION = Statement(
    "SELECT 1 FROM user_sessions WHERE id = :id AND user_id = :user_id AND revoked_at IS NULL")


def authenticate_access_token(uow: UnitOfWork, settings, token: str) -> tuple[str, str] | None:
    """(user_id, session_id) for a valid, unrevoked access token, else None.

    One primary-key read per request: nothing is cached, so revocation is immediate.
    """
    found = decode_access_token(settings.secret_key, token)
    if found is None:
        return None
    user_id, session_id = found
    if not uow.run(_LIVE_SESSION, {"id": session_id, "user_id": user_id}):
        return None
    return user_id, session_id


def purge_expired(uow: UnitOfWork, now: datetime | None = None) -> int:
    """Forget refresh tokens a day past expiry (spent ones are kept until then, for reuse detection)."""
    res = uow.session.execute(delete(RefreshToken).where(RefreshToken.expires_at <= (now or utcnow()) - timedelta(days=1)))
    return rowcount(res)
