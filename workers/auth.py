"""Housekeeping for login: forget expired codes, tokens and rate-limit counters."""

from __future__ import annotations

from core import otp, pins, ratelimit, sessions
from core.db import utcnow


def purge_expired(rt, now=None) -> int:
    now = now or utcnow()
    with rt.uow() as uow:
        n = (otp.purge_expired(uow, now) + sessions.purge_expired(uow, now)
             + pins.purge_expired(uow, now) + ratelimit.purge_expired(uow, now))
        uow.commit()
    return n
