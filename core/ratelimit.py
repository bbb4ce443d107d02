"""Rate limits kept in the database, so every web process and worker shares them.

A sliding window, approximated the usual way from two fixed windows: the count of the
current window plus the previous window's count weighted by how much of it still
overlaps the last `window`. One row per (bucket, window number), bumped with an atomic
upsert (INSERT … ON CONFLICT DO UPDATE … RETURNING, on PostgreSQL and SQLite alike), so
concurrent requests each see a distinct count and nothing lives in process memory.

The hit is written in the caller's transaction: a refused request rolls back and does
not count against the caller, and neither does a request that fails for another reason.

Buckets are keyed hashes of what they count (a phone, an IP address), so the table is
no log of who asked for what.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, Integer, String, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, mapped_column

from core.crypto import keyed_hash
from core.db import Base, UnitOfWork, UTCDateTime, rowcount, utcnow
from core.errors import RateLimited


class RateLimitCounter(Base):
    __tablename__ = "rate_limit_counters"

    bucket: Mapped[str] = mapped_column(String(80), primary_key=True)
    window_no: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


@dataclass(frozen=True)
class Rule:
    """At most `limit` hits per `window` for one subject."""

    name: str
    limit: int
    window: timedelta
    message: str = "too many requests"


def weighted_count(prev: int, current: int, elapsed_fraction: float) -> float:
    """The sliding-window estimate: what of the previous window still overlaps, plus now."""
    return prev * (1.0 - elapsed_fraction) + current


def seconds_until_allowed(prev: int, current: int, limit: int, elapsed_fraction: float,
                          window_seconds: float) -> int:
    """How long until one more hit fits, given `current` hits already in this window."""
    if current + 1 <= limit:
        if prev == 0:
            return 1
        # prev * (1 - f) + current + 1 <= limit  ⇔  f >= 1 - (limit - current - 1) / prev
        f = 1.0 - (limit - current - 1) / prev
        wait = (f - elapsed_fraction) * window_seconds
    else:
        # Only in a later window: there `current` becomes the previous window's count.
        f = 1.0 - (limit - 1) / current if current else 0.0
        wait = (1.0 - elapsed_fraction + max(0.0, f)) * window_seconds
    return max(1, math.ceil(wait))


def network_of(ip: str) -> str:
    """The requesting network an address stands for: an IPv4 address itself, an IPv6
    address's /64 (one subscriber's, who holds every address in it)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _bucket(secret_key: str, rule: Rule, subject: str) -> str:
    return f"{rule.name[:15]}:{keyed_hash(secret_key, 'ratelimit', rule.name + chr(0) + subject)[:48]}"


def hit(uow: UnitOfWork, secret_key: str, rule: Rule, subject: str, *,
        now: datetime | None = None) -> None:
    """Count one hit of `subject` against `rule`; raise RateLimited if it is one too many."""
    now = now or utcnow()
    w = rule.window.total_seconds()
    ts = now.timestamp()
    window_no = int(ts // w)
    elapsed = (ts - window_no * w) / w
    bucket = _bucket(secret_key, rule, subject)
    s = uow.session
    values = dict(bucket=bucket, window_no=window_no, count=1,
                  expires_at=now + 2 * rule.window + timedelta(seconds=1))
    dialect = s.get_bind().dialect.name
    ins = (pg_insert if dialect == "postgresql" else sqlite_insert)(RateLimitCounter).values(**values)
    stmt = ins.on_conflict_do_update(
        index_elements=["bucket", "window_no"], set_={"count": RateLimitCounter.count + 1}
    ).returning(RateLimitCounter.count)
    current = s.execute(stmt).scalar_one()
    prev = s.scalar(select(RateLimitCounter.count).where(
        RateLimitCounter.bucket == bucket, RateLimitCounter.window_no == window_no - 1)) or 0
    if weighted_count(prev, current, elapsed) > rule.limit:
        retry = seconds_until_allowed(prev, current - 1, rule.limit, elapsed, w)
        raise RateLimited(f"{rule.message}; try again in {retry} seconds", retry_after=retry)


def purge_expired(uow: UnitOfWork, now: datetime | None = None) -> int:
    res = uow.session.execute(delete(RateLimitCounter).where(RateLimitCounter.expires_at <= (now or utcnow())))
    return rowcount(res)
