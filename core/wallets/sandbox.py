"""Sandbox buyers: test users whose test USD wallet holds $1000, for merchants' test keys."""

from __future__ import annotations

from core.db import UnitOfWork
from core.identity import users
from core.ids import new_id
from core.wallets import ledger, wallets

BUYER_FUNDS = 1000_00


def make_buyer(uow: UnitOfWork, phone_e164: str, *, amount: int = BUYER_FUNDS):
    """The user with this phone, with their test USD wallet topped up to `amount`.

    Running it again tops up rather than adding another $1000, so a script can call it
    before every run. The wallet's row is locked from the read of its balance to the
    caller's commit: two runs at once top it up once, the second finding it full.
    """
    user = users.get_or_create(uow, phone_e164)
    w = wallets.wallet_for(uow, wallets.USER, user.id, "USD", False)
    uow.session.refresh(w, with_for_update=True)
    short = amount - w.balance
    if short > 0:
        src = wallets.system_account(uow, "sandbox_funding", "USD", False)
        ledger.post(uow, kind="sandbox_funding", obj_type="sandbox_funding", obj_id=new_id("sbx"),
                    livemode=False, currency="USD", legs=[(src.id, -short), (w.id, short)],
                    memo="sandbox buyer")
        uow.session.refresh(w)
    return user, w
