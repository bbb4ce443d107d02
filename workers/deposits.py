"""Deposit jobs: start (or poll) one deposit's collection on its rail."""

from __future__ import annotations

from core.wallets import deposits
from workers.context import runtime_for


def advance(deposit_id: str, runtime=None) -> None:
    rt = runtime_for(runtime)
    with rt.uow() as uow:
        deposits.advance(uow, rt, deposit_id)
        uow.commit()
