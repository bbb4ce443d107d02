"""Wallets: who owns which ledger account, and what happened in it.

A user or merchant holds one wallet per currency per mode, created when first needed.
System accounts (claims held, cash-in clearing, adjustments, sandbox funding) are
wallets too, owned by "system" and named by a code.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core.amounts import CURRENCIES
from core.db import UnitOfWork, utcnow
from core.errors import NotFound
from core.ids import new_id
from core.wallets.ledger import Account, Posting

USER, MERCHANT, SYSTEM = "user", "merchant", "system"

# code -> may it go negative? (Those that may stand for money outside Soxara.)
SYSTEM_ACCOUNTS = {
    "claims_held": False,       # transfers waiting for their recipient to claim them
    "cash_in_clearing": True,   # deposits: what the MoMo / Orange rails owe us
    "adjustments": True,        # operator credits and debits (soxara ledger adjust)
    "sandbox_funding": True,    # where test buyers' $1000 comes from
    "fees": False,
}


def find_wallet(uow: UnitOfWork, owner_type: str, owner_id: str, currency: str,
                livemode: bool) -> Account | None:
    return uow.session.scalar(select(Account).where(
        Account.owner_type == owner_type, Account.owner_id == owner_id,
        Account.currency == currency, Account.livemode == livemode))


def wallet_for(uow: UnitOfWork, owner_type: str, owner_id: str, currency: str,
               livemode: bool) -> Account:
    """The owner's wallet in this currency and mode, created the first time it is needed."""
    acct = find_wallet(uow, owner_type, owner_id, currency, livemode)
    if acct is not None:
        return acct
    acct = Account(id=new_id("wal"), owner_type=owner_type, owner_id=owner_id, currency=currency,
                   livemode=livemode, balance=0,
                   may_go_negative=owner_type == SYSTEM and SYSTEM_ACCOUNTS[owner_id],
                   created_at=utcnow())
    try:
        with uow.session.begin_nested():
            uow.session.add(acct)
    except IntegrityError:  # created concurrently: use theirs
        found = find_wallet(uow, owner_type, owner_id, currency, livemode)
        assert found is not None
        acct = found
    return acct


def system_account(uow: UnitOfWork, code: str, currency: str, livemode: bool) -> Account:
    if code not in SYSTEM_ACCOUNTS:
        raise ValueError(f"unknown system account {code}")
    if code == "sandbox_funding" and livemode:
        raise ValueError("sandbox funding is test money: it has no live account")
    return wallet_for(uow, SYSTEM, code, currency, livemode)


def list_for(uow: UnitOfWork, owner_type: str, owner_id: str, livemode: bool) -> list[Account]:
    """The owner's USD and LRD wallets in this mode (created on first sight)."""
    return [wallet_for(uow, owner_type, owner_id, c, livemode) for c in CURRENCIES]


def get_owned(uow: UnitOfWork, owner_type: str, owner_id: str, livemode: bool, wallet_id: str) -> Account:
    acct = uow.session.get(Account, wallet_id)
    if acct is None or acct.owner_type != owner_type or acct.owner_id != owner_id or acct.livemode != livemode:
        raise NotFound("no such wallet")
    return acct


def get(uow: UnitOfWork, wallet_id: str) -> Account:
    acct = uow.session.get(Account, wallet_id)
    if acct is None:
        raise NotFound("no such wallet")
    return acct


def transactions(uow: UnitOfWork, wallet_id: str, *, limit: int, before_seq: int | None = None) -> list[Posting]:
    """Newest first, keyset-paged on the posting sequence."""
    q = select(Posting).where(Posting.account_id == wallet_id)
    if before_seq is not None:
        q = q.where(Posting.seq < before_seq)
    return list(uow.session.scalars(q.order_by(Posting.seq.desc()).limit(limit)))
