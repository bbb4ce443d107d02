"""Cash-in: a user adds money to their wallet from MTN MoMo or Orange Money.

A deposit starts `pending`; the rail is asked to collect after the deposit is committed
(by a job), then polled by the scheduler's sweep until it answers or times out. Only a
`succeeded` collection credits the wallet, from the cash-in clearing account, once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import BigInteger, Boolean, String, select
from sqlalchemy.orm import Mapped, mapped_column

from core import amounts, rails
from core.amounts import format_amount
from core.db import Base, UnitOfWork, UTCDateTime, utcnow
from core.errors import InvalidInput, NotFound
from core.identity import users
from core.ids import new_id
from core.jobs import ADVANCE_DEPOSIT, enqueue_after_commit
from core.messaging import outbox
from core.wallets import ledger, wallets

TIMEOUT = timedelta(seconds=60)
POLL_EVERY = timedelta(seconds=1)


class Deposit(Base):
    __tablename__ = "deposits"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # dep_…
    user_id: Mapped[str] = mapped_column(String(40), index=True)
    livemode: Mapped[bool] = mapped_column(Boolean)
    method: Mapped[str] = mapped_column(String(20))
    phone_number: Mapped[str] = mapped_column(String(20))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(12))  # pending | succeeded | failed
    failure_code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    failure_message: Mapped[str | None] = mapped_column(String(200), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


def create(uow: UnitOfWork, rt, *, user_id: str, amount: int, currency: str, method: str,
           phone_number: str, livemode: bool) -> Deposit:
    if method not in rails.MOBILE_MONEY:
        raise InvalidInput("method must be mtn_momo or orange_money", field="method")
    amounts.check_currency(currency)
    amounts.check_amount(amount)
    rt.rails.collection(method, livemode)  # off for this mode: refused before anything is written
    users.get(uow, user_id)
    wallets.wallet_for(uow, wallets.USER, user_id, currency, livemode)
    now = utcnow()
    d = Deposit(id=new_id("dep"), user_id=user_id, livemode=livemode, method=method,
                phone_number=phone_number, amount=amount, currency=currency, status="pending",
                created_at=now, next_check_at=now)
    uow.session.add(d)
    uow.session.flush()
    enqueue_after_commit(uow, rt.jobs, ADVANCE_DEPOSIT, d.id)
    return d


def get_for_user(uow: UnitOfWork, user_id: str, livemode: bool, deposit_id: str) -> Deposit:
    d = uow.session.get(Deposit, deposit_id)
    if d is None or d.user_id != user_id or d.livemode != livemode:
        raise NotFound("no such deposit")
    return d


def advance(uow: UnitOfWork, rt, deposit_id: str, now: datetime | None = None) -> Deposit | None:
    """Ask the rail about one pending deposit and act on its answer. Safe to run twice:
    the deposit row is locked and only a pending deposit moves."""
    now = now or utcnow()
    d = uow.session.scalar(select(Deposit).where(Deposit.id == deposit_id).with_for_update())
    if d is None or d.status != "pending":
        return d
    result = _ask_rail(rt, d, now)
    if result.status == "pending" and d.started_at is not None and now - d.started_at >= TIMEOUT:
        result = rails.RailResult("failed", "timeout", "the mobile money network did not answer")
    if result.status == "succeeded":
        clearing = wallets.system_account(uow, "cash_in_clearing", d.currency, d.livemode)
        dst = wallets.wallet_for(uow, wallets.USER, d.user_id, d.currency, d.livemode)
        ledger.post(uow, kind="deposit", obj_type="deposit", obj_id=d.id, livemode=d.livemode,
                    currency=d.currency, legs=[(clearing.id, -d.amount), (dst.id, d.amount)])
        d.status, d.settled_at, d.next_check_at = "succeeded", now, None
        _notify(uow, rt, d, f"Added {format_amount(d.amount, d.currency)} to your wallet. Ref {d.id}")
    elif result.status == "failed":
        d.status, d.settled_at, d.next_check_at = "failed", now, None
        d.failure_code, d.failure_message = result.failure_code, result.message
        _notify(uow, rt, d, f"Your deposit of {format_amount(d.amount, d.currency)} failed: "
                            f"{result.message or result.failure_code}. Nothing was taken. Ref {d.id}")
    else:
        d.next_check_at = now + POLL_EVERY
    return d


def _ask_rail(rt, d: Deposit, now: datetime) -> rails.RailResult:
    """Start the deposit's collection on its rail, or ask the rail how it stands."""
    try:
        rail = rt.rails.collection(d.method, d.livemode)
    except rails.RailUnavailable as off:
        # Off for this mode (a live deposit made before production turned the sandbox off
        # for live money): never settled through it. Not started, nothing was asked of
        # anyone: it fails now. Started: no answer, until the timeout decides.
        if d.started_at is None:
            return rails.RailResult("failed", "rail_unavailable", off.message)
        return rails.RailResult("pending")
    if d.started_at is None:
        d.started_at = now
        return rail.start_collection(reference=d.id, phone=d.phone_number, amount=d.amount,
                                     currency=d.currency, now=now)
    return rail.collection_status(reference=d.id, phone=d.phone_number, started_at=d.started_at,
                                  now=now)


def _notify(uow: UnitOfWork, rt, d: Deposit, text: str) -> None:
    outbox.send_whatsapp(uow, rt, users.get(uow, d.user_id).phone_number, text)


def due(uow: UnitOfWork, now: datetime, limit: int = 200) -> list[str]:
    """Pending deposits whose rail is due to be asked (started or polled), oldest due
    first: the sweep (workers/deposits.py) hands each to `advance` in a transaction of
    its own."""
    return list(uow.session.scalars(
        select(Deposit.id).where(Deposit.status == "pending", Deposit.next_check_at <= now)
        .order_by(Deposit.next_check_at).limit(limit)))
