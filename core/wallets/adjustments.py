"""Operator adjustments: a credit or debit to a wallet, with a written reason.

An adjustment is itself a ledger entry against the `adjustments` system account, so
`soxara ledger check` still balances and the wallet's history shows why it changed.
"""

from __future__ import annotations

from core.amounts import is_minor_units
from core.db import UnitOfWork
from core.errors import InvalidInput
from core.ids import new_id
from core.wallets import ledger, wallets


def adjust(uow: UnitOfWork, *, wallet_id: str, amount: int, reason: str) -> ledger.PostedEntry:
    reason = (reason or "").strip()
    if len(reason) < 3:
        raise InvalidInput("an adjustment needs a written reason", field="reason")
    if not is_minor_units(amount) or amount == 0:
        raise InvalidInput("the amount is a non-zero integer of minor units", field="amount")
    w = wallets.get(uow, wallet_id)
    if w.owner_type == wallets.SYSTEM:
        raise InvalidInput("adjust a user's or merchant's wallet, not a system account", field="wallet")
    src = wallets.system_account(uow, "adjustments", w.currency, w.livemode)
    return ledger.post(uow, kind="adjustment", obj_type="adjustment", obj_id=new_id("adj"),
                       livemode=w.livemode, currency=w.currency,
                       legs=[(src.id, -amount), (w.id, amount)], memo=reason)
