"""Deposit jobs: start (or poll) one deposit's collection on its rail; the sweep that
polls every deposit that is due."""

from __future__ import annotations

from core.db import utcnow
from core.wallets import deposits
from workers.context import runtime_for
from workers.scheduled import each_row


def advance(deposit_id: str, runtime=None) -> None:
    rt = runtime_for(runtime)
    with rt.uow() as uow:
        deposits.advance(uow, rt, deposit_id)
        uow.commit()


def advance_due(runtime=None, now=None, limit: int = 200) -> int:
    """Ask the rail about every pending deposit that is due: how many were asked."""
    rt, now = runtime_for(runtime), now or utcnow()
    with rt.uow() as uow:
        due = deposits.due(uow, now, limit)
    return each_row(rt, "deposit", due, lambda uow, dep_id: deposits.advance(uow, rt, dep_id, now) is not None)
