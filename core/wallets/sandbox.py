"""Sandbox buyers: test users whose test USD wallet holds $1000, for merchants' test keys."""

from __future__ import annotations

from sqlalchemy import select

from core.db import UnitOfWork
from core.identity import users
from core.ids import new_id
from core.wallets import ledger, wallets
from core.wallets.ledger import Posting
from core.wallets.wallets import Wallet

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


def buyer_by_phone(uow: UnitOfWork, phone_e164: str) -> tuple[str | None, bool]:
    """(the user with this phone, or None; whether they are a sandbox buyer: their test
    USD wallet was funded by `make_buyer`), in one round trip. A merchant's test key takes
    a sandbox buyer's wallet payments at once."""
    funded = (select(Posting.seq).join(Wallet, Wallet.id == Posting.account_id)
              .where(Wallet.owner_type == wallets.USER, Wallet.owner_id == users.User.id,
                     Wallet.livemode.is_(False), Wallet.currency == "USD", Posting.kind == "sandbox_funding")
              .limit(1).exists())
    row = uow.session.execute(select(users.User.id, funded).where(users.User.phone_number == phone_e164)).first()
    return (row[0], bool(row[1])) if row is not None else (None, False)
