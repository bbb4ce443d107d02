"""The ledger: the one place money moves.

Every movement is one journal entry whose postings sum to zero in its currency. Each
wallet (a user's, a merchant's or a system account such as claims held: core/wallets/
wallets.py) keeps a materialised balance, updated in the same transaction as its
postings, and each posting records the balance it left behind. A wallet's transactions,
as people see them, are its postings (`transactions`).

No wallet goes below zero unless it may (`may_go_negative`): a CHECK constraint of the
accounts table, so the database itself refuses an overdraft, on the current row,
whoever writes it; `post` turns that refusal into InsufficientFunds.

Concurrency: `post` updates the touched balances in a fixed order (by account id). On
PostgreSQL each UPDATE takes the row lock, so two entries touching the same wallets
queue rather than deadlock, and the constraint is checked on the locked, current row,
so of two transfers that would each overdraw a wallet exactly one wins. On SQLite,
writers are serialised by the transaction itself (see core/db.py).

The balance moves and postings are deferred writes (core/db.py): they travel with the
transaction's next statement or its commit, which is where an overdraft is refused, and
the row locks are taken only then, so a busy wallet is locked for one round trip.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    String,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.orm.util import identity_key

from core.amounts import check_currency, is_minor_units
from core.db import (
    Base,
    Money,
    Seq,
    Statement,
    UnitOfWork,
    UTCDateTime,
    refuse_on_violation,
    utcnow,
)
from core.errors import InsufficientFunds
from core.ids import new_id
from core.wallets.wallets import Wallet


class JournalEntry(Base):
    __tablename__ = "journal_entries"
    __table_args__ = (Index("ix_journal_entries_object", "obj_type", "obj_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))  # transfer, claim, claim_return, deposit, adjustment…
    obj_type: Mapped[str] = mapped_column(String(20))
    obj_id: Mapped[str] = mapped_column(String(40))
    livemode: Mapped[bool] = mapped_column(Boolean)
    currency: Mapped[str] = mapped_column(String(3))
    memo: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Posting(Base):
    """One line of an entry: a signed amount on one account, and the balance it left."""

    __tablename__ = "postings"
    __table_args__ = (Index("ix_postings_account_seq", "account_id", "seq"),)

    seq: Mapped[int] = mapped_column(Seq, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)  # txn_…
    entry_id: Mapped[str] = mapped_column(ForeignKey("journal_entries.id"), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    amount: Mapped[int] = mapped_column(Money)
    balance_after: Mapped[int] = mapped_column(Money)
    kind: Mapped[str] = mapped_column(String(30))
    obj_type: Mapped[str] = mapped_column(String(20))
    obj_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


NO_OVERDRAFT = "ck_accounts_no_overdraft"  # the constraint's name in the database
refuse_on_violation(NO_OVERDRAFT, lambda: InsufficientFunds("insufficient funds"))

# Hot statements (core/db.py), all deferred: the entry, each balance move and its posting,
# whose balance_after is read from the row just moved. A move that matches no account of
# the entry's currency and mode leaves balance_after NULL, which the NOT NULL column
# refuses: the entry fails whole, never half-posted.
_MOVE = Statement(
    "UPDATE accounts SET balance = balance + CAST(:amount AS BIGINT) "
    "WHERE id = :account_id AND currency = :currency AND livemode = :livemode")
_INSERT_ENTRY = Statement(
    "INSERT INTO journal_entries (id, kind, obj_type, obj_id, livemode, currency, memo, created_at) "
    "VALUES (:id, :kind, :obj_type, :obj_id, :livemode, :currency, :memo, :created_at)",
    created_at=UTCDateTime())
_INSERT_POSTING = Statement(
    "INSERT INTO postings (id, entry_id, account_id, amount, balance_after, kind, obj_type, obj_id, created_at) "
    # (:moved is :account_id again, named apart: PostgreSQL deduces one type per parameter.)
    "VALUES (:id, :entry_id, :account_id, :amount, (SELECT balance FROM accounts WHERE id = :moved "
    "AND currency = :currency AND livemode = :livemode), :kind, :obj_type, :obj_id, :created_at)",
    created_at=UTCDateTime())


@dataclass(frozen=True)
class PostedEntry:
    """A journal entry as `post` wrote it: plain data, since its rows are written by hot
    statements and the session does not hold them."""

    id: str
    kind: str
    obj_type: str
    obj_id: str
    livemode: bool
    currency: str
    memo: str
    created_at: datetime


def post(uow: UnitOfWork, *, kind: str, obj_type: str, obj_id: str, livemode: bool,
         currency: str, legs: list[tuple[str, int]], memo: str = "") -> PostedEntry:
    """Move money: one balanced entry, written with the transaction's next statement or
    its commit. That is where an overdraft raises InsufficientFunds (at once on SQLite);
    the caller's transaction (or savepoint) then rolls back and nothing has moved."""
    check_currency(currency)
    merged: dict[str, int] = defaultdict(int)
    for account_id, amount in legs:
        if not is_minor_units(amount):
            raise TypeError("ledger amounts are integer minor units")
        merged[account_id] += amount
    merged = {a: amt for a, amt in merged.items() if amt != 0}
    if len(merged) < 2 or sum(merged.values()) != 0:
        raise ValueError(f"unbalanced entry {kind} for {obj_id}: {dict(merged)}")

    s = uow.session
    now = utcnow()
    entry = PostedEntry(id=new_id("jrn"), kind=kind, obj_type=obj_type, obj_id=obj_id, livemode=livemode,
                        currency=currency, memo=memo[:500], created_at=now)
    uow.defer(_INSERT_ENTRY, dict(vars(entry)))
    for account_id in sorted(merged):  # fixed lock order: no deadlocks between entries
        amount = merged[account_id]
        where = {"account_id": account_id, "currency": currency, "livemode": livemode}
        uow.defer(_MOVE, {**where, "amount": amount})
        uow.defer(_INSERT_POSTING, {**where, "moved": account_id, "id": new_id("txn"), "entry_id": entry.id,
                                    "amount": amount,
                                    "kind": kind, "obj_type": obj_type, "obj_id": obj_id, "created_at": now})
        # The balance changes under the ORM's feet: reload it if the session holds the wallet.
        held = s.identity_map.get(identity_key(Wallet, account_id))
        if held is not None:
            s.expire(held, ["balance"])
    return entry


def check(uow: UnitOfWork) -> list[str]:
    """Every invariant of the ledger, checked from the rows. [] means all hold."""
    s = uow.session
    breaches: list[str] = []
    for entry_id, total, n in s.execute(
        select(Posting.entry_id, func.sum(Posting.amount), func.count())
        .group_by(Posting.entry_id)
        .having(or_(func.sum(Posting.amount) != 0, func.count() < 2))
    ):
        breaches.append(f"entry {entry_id} does not balance: {n} postings sum to {total}")
    orphan = s.scalar(select(func.count()).select_from(JournalEntry).where(
        ~select(Posting.seq).where(Posting.entry_id == JournalEntry.id).exists()))
    if orphan:
        breaches.append(f"{orphan} journal entries have no postings")
    for acct_id, currency, entry_currency in s.execute(
        select(Wallet.id, Wallet.currency, JournalEntry.currency)
        .join(Posting, Posting.account_id == Wallet.id)
        .join(JournalEntry, JournalEntry.id == Posting.entry_id)
        .where(or_(JournalEntry.currency != Wallet.currency, JournalEntry.livemode != Wallet.livemode))
        .limit(20)
    ):
        breaches.append(f"wallet {acct_id} ({currency}) has a posting from a {entry_currency} entry or another mode")
    sums = select(Posting.account_id, func.coalesce(func.sum(Posting.amount), 0).label("total")) \
        .group_by(Posting.account_id).subquery()
    for acct_id, balance, total in s.execute(
        select(Wallet.id, Wallet.balance, func.coalesce(sums.c.total, 0))
        .outerjoin(sums, sums.c.account_id == Wallet.id)
        .where(Wallet.balance != func.coalesce(sums.c.total, 0))
    ):
        breaches.append(f"wallet {acct_id} balance {balance} != sum of its postings {total}")
    for acct_id, balance in s.execute(
        select(Wallet.id, Wallet.balance).where(Wallet.balance < 0, ~Wallet.may_go_negative)
    ):
        breaches.append(f"wallet {acct_id} is negative: {balance}")
    # Each posting's balance_after must be the running sum of its account's postings.
    bad_chain = s.execute(text(
        "SELECT account_id, id FROM (SELECT account_id, id, balance_after, "
        "SUM(amount) OVER (PARTITION BY account_id ORDER BY seq) AS running FROM postings) t "
        "WHERE running != balance_after LIMIT 20"
    )).all()
    for acct_id, posting_id in bad_chain:
        breaches.append(f"posting {posting_id} on {acct_id}: balance_after is not the running balance")
    for currency, livemode, total in s.execute(
        select(Wallet.currency, Wallet.livemode, func.sum(Wallet.balance))
        .group_by(Wallet.currency, Wallet.livemode)
        .having(func.sum(Wallet.balance) != 0)
    ):
        breaches.append(f"{currency} {'live' if livemode else 'test'} balances sum to {total}, not 0")
    return breaches


def transactions(uow: UnitOfWork, wallet_id: str, *, limit: int, before_seq: int | None = None) -> list[Posting]:
    """A wallet's transactions (its postings), newest first, keyset-paged on the posting sequence."""
    q = select(Posting).where(Posting.account_id == wallet_id)
    if before_seq is not None:
        q = q.where(Posting.seq < before_seq)
    return list(uow.session.scalars(q.order_by(Posting.seq.desc()).limit(limit)))
