"""Transfer sweeps: claim windows that ended, and test-mode transfers that claim themselves."""

from __future__ import annotations

from core.db import utcnow
from core.wallets import claims
from workers.context import runtime_for
from workers.scheduled import each_row


def expire_due(runtime=None, now=None, limit: int = 200) -> int:
    """Return the money of every transfer whose claim window has ended: how many."""
    rt, now = runtime_for(runtime), now or utcnow()
    with rt.uow() as uow:
        due = claims.due_to_expire(uow, now, limit)
    return each_row(rt, "claim window end", due, lambda uow, tid: claims.expire(uow, rt, tid, now))


def auto_claim_due(runtime=None, now=None, limit: int = 200) -> int:
    """Complete every test-mode transfer whose auto-claim time has come: how many."""
    rt, now = runtime_for(runtime), now or utcnow()
    with rt.uow() as uow:
        due = claims.due_to_auto_claim(uow, now, limit)
    return each_row(rt, "test-mode auto-claim", due, lambda uow, tid: claims.auto_claim(uow, rt, tid, now))
