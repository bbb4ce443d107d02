"""Wallets: who holds money in which currency and mode.

A user or merchant holds one wallet per currency per mode, created when first needed.
System accounts (claims held, cash-in clearing, adjustments, sandbox funding) are
wallets too, owned by "system" and named by a code. Balances move only through the
ledger (core/wallets/ledger.py), whose postings are a wallet's transactions.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, String, UniqueConstraint, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from core.amounts import CURRENCIES
from core.db import Base, Money, UnitOfWork, UTCDateTime, utcnow
from core.errors import NotFound
from core.ids import new_id

USER, MERCHANT, SYSTEM = "user", "merchant", "system"

# code -> may it go negative? (Those that may stand for money outside Soxara.)
SYSTEM_ACCOUNTS = {
    "claims_held": False,       # transfers waiting for their recipient to claim them
    "cash_in_clearing": True,   # deposits: what the MoMo / Orange rails owe us
    "adjustments": True,        # operator credits and debits (soxara ledger adjust)
    "sandbox_funding": True,    # where test buyers' $1000 comes from
    "fees": False,
    "card_clearing": True,      # card payments: what the card network owes us (and refunds paid back out)
    "refunds_pending": False,   # refunds on their way back over a rail (MoMo, Orange, card)
}


class Wallet(Base):
    """Money held in one currency and mode. `owner_type` is user, merchant or system;
    system accounts are named by code (SYSTEM_ACCOUNTS). Its balance moves only through
    core/wallets/ledger.py."""

    # The table keeps the name it was born with, `accounts`. Renaming it would take a
    # migration that locks the busiest table of the money path, and every process still
    # running the old code (a rolling deploy, a worker) would fail its SQL until replaced;
    # the name is also spelled in the hot statements, the overdraft constraint
    # (ck_accounts_no_overdraft, which core maps to InsufficientFunds), postings.account_id
    # and the benchmarks' raw SQL. All that for a word only the code reads.
    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint("owner_type", "owner_id", "currency", "livemode"),
        CheckConstraint("balance >= 0 OR may_go_negative", name="no_overdraft"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner_type: Mapped[str] = mapped_column(String(10))
    owner_id: Mapped[str] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3))
    livemode: Mapped[bool] = mapped_column(Boolean)
    balance: Mapped[int] = mapped_column(Money, default=0)
    # Only accounts that stand for money outside Soxara (what a rail owes us, operator
    # adjustments, sandbox funding) may go below zero.
    may_go_negative: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def find_wallet(uow: UnitOfWork, owner_type: str, owner_id: str, currency: str,
                livemode: bool) -> Wallet | None:
    return uow.session.scalar(select(Wallet).where(
        Wallet.owner_type == owner_type, Wallet.owner_id == owner_id,
        Wallet.currency == currency, Wallet.livemode == livemode))


def wallets_of(uow: UnitOfWork, owners: list[tuple[str, str]], currency: str,
               livemode: bool) -> dict[tuple[str, str], Wallet]:
    """Each owner's wallet in this currency and mode, read in one round trip with fresh
    balances (system accounts by their code as owner id); one missing is created."""
    rows = uow.session.scalars(
        select(Wallet).where(tuple_(Wallet.owner_type, Wallet.owner_id).in_(owners),
                             Wallet.currency == currency, Wallet.livemode == livemode)
        .execution_options(populate_existing=True))
    found = {(w.owner_type, w.owner_id): w for w in rows}
    for owner_type, owner_id in owners:
        if (owner_type, owner_id) not in found:
            found[(owner_type, owner_id)] = wallet_for(uow, owner_type, owner_id, currency, livemode)
    return found


def wallet_for(uow: UnitOfWork, owner_type: str, owner_id: str, currency: str,
               livemode: bool) -> Wallet:
    """The owner's wallet in this currency and mode, created the first time it is needed."""
    acct = find_wallet(uow, owner_type, owner_id, currency, livemode)
    if acct is not None:
        return acct
    acct = Wallet(id=new_id("wal"), owner_type=owner_type, owner_id=owner_id, currency=currency,
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


def system_account(uow: UnitOfWork, code: str, currency: str, livemode: bool) -> Wallet:
    if code not in SYSTEM_ACCOUNTS:
        raise ValueError(f"unknown system account {code}")
    if code == "sandbox_funding" and livemode:
        raise ValueError("sandbox funding is test money: it has no live account")
    return wallet_for(uow, SYSTEM, code, currency, livemode)


def list_for(uow: UnitOfWork, owner_type: str, owner_id: str, livemode: bool) -> list[Wallet]:
    """The owner's USD and LRD wallets in this mode (created on first sight)."""
    return [wallet_for(uow, owner_type, owner_id, c, livemode) for c in CURRENCIES]


def get_owned(uow: UnitOfWork, owner_type: str, owner_id: str, livemode: bool, wallet_id: str) -> Wallet:
    acct = uow.session.get(Wallet, wallet_id)
    if acct is None or acct.owner_type != owner_type or acct.owner_id != owner_id or acct.livemode != livemode:
        raise NotFound("no such wallet")
    return acct


def get(uow: UnitOfWork, wallet_id: str) -> Wallet:
    return uow.get(Wallet, wallet_id, what="wallet")
