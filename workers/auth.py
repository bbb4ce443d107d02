"""Housekeeping for login: forget expired codes, tokens and rate-limit counters."""

from __future__ import annotations

from core import ratelimit
from core.db import utcnow
from core.identity import otp, pins, sessions


def purge_expired(rt, now=None) -> int:
    now = now or utcnow()
    with rt.uow() as uow:
        n = (otp.purge_expired(uow, now) + sessions.purge_expired(uow, now)
             + pins.purge_expired(uow, now) + ratelimit.purge_expired(uow, now))
        uow.commit()
    return n
