"""A bill payment: money from a wallet to a biller (LEC, LWSC…) over TIMM.

`create` checks the biller, the account number and the amount, then in one transaction
moves the amount from the payer's wallet to the bill-clearing account (one ledger entry),
writes the payment `pending` with `bill_payment.initiated`, and queues the job that pays
the biller once the transaction commits. The row's `next_check_at` is the job's due time,
so a lost job is done by the sweep (core/jobs.py). What happens next is
core/bills/settlement.py: `processing` while TIMM is asked, then `succeeded` (the money
goes on to what Soxara owes TIMM) or `failed` (the money back in the wallet), one ledger
entry each.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Index, Integer, String, select
from sqlalchemy.orm import Mapped, mapped_column

from core import amounts
from core.billers import BillerInfo
from core.db import Base, UnitOfWork, UTCDateTime, utcnow
from core.errors import InsufficientFunds, InvalidInput, NotFound
from core.events import events
from core.ids import new_id
from core.jobs import SETTLE_BILL_PAYMENT, enqueue_after_commit
from core.wallets import ledger, wallets

PENDING, PROCESSING, SUCCEEDED, FAILED = "pending", "processing", "succeeded", "failed"
STATUSES = (PENDING, PROCESSING, SUCCEEDED, FAILED)


@dataclass(frozen=True)
class Payer:
    """Who pays: a user (their own wallet, from the chat or the app) or a merchant (with a
    key holding `bill_payments:create`), in one mode."""

    kind: str  # "user" | "merchant"
    id: str
    livemode: bool


class BillPayment(Base):
    __tablename__ = "bill_payments"
    __table_args__ = (
        Index("ix_bill_payments_payer", "payer_type", "payer_id", "id"),
        Index("ix_bill_payments_due", "status", "next_check_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # bp_…
    livemode: Mapped[bool] = mapped_column(Boolean)
    payer_type: Mapped[str] = mapped_column(String(10))
    payer_id: Mapped[str] = mapped_column(String(40))
    wallet_id: Mapped[str] = mapped_column(String(40))
    biller: Mapped[str] = mapped_column(String(20))
    account_number: Mapped[str] = mapped_column(String(40))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(12))  # pending | processing | succeeded | failed
    # Prepaid electricity: the 20-digit STS token (digits only; shown in groups of four)
    # and the kWh it buys. It opens nothing but the meter it was bought for, and the
    # customer may need it read back by support: kept as it is, like a receipt.
    token: Mapped[str | None] = mapped_column(String(40), nullable=True)
    units: Mapped[str | None] = mapped_column(String(40), nullable=True)
    failure_code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    failure_message: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # When TIMM was first asked to pay: from then on it is only ever asked how it stands.
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    status_checks: Mapped[int] = mapped_column(Integer, default=0)
    # When the worker is next due to act on it (pay, or ask); None once settled.
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


def format_token(token: str | None) -> str | None:
    """An STS token as it is typed into the meter: `1234 5678 9012 3456 7890`."""
    if not token:
        return None
    return " ".join(token[i:i + 4] for i in range(0, len(token), 4))


def snapshot(bp: BillPayment) -> dict:
    """The bill payment as the outside world sees it (events carry this; the API's schema
    shows the same fields)."""
    return {
        "id": bp.id, "object": "bill_payment", "livemode": bp.livemode, "biller": bp.biller,
        "account_number": bp.account_number, "amount": bp.amount, "currency": bp.currency,
        "status": bp.status, "token": format_token(bp.token), "units": bp.units,
        "failure_code": bp.failure_code, "failure_message": bp.failure_message,
        "payer": {"type": bp.payer_type, "id": bp.payer_id},
        "created_at": events.iso(bp.created_at), "settled_at": events.iso(bp.settled_at),
    }


def record_event(uow: UnitOfWork, bp: BillPayment, type_: str) -> None:
    events.record(uow, type_, object_type="bill_payment", object_id=bp.id, snapshot=snapshot(bp),
                  livemode=bp.livemode, merchant_id=bp.payer_id if bp.payer_type == "merchant" else None)


def biller_for(rt, code) -> BillerInfo:
    """The catalog's biller with this code, or InvalidInput naming the billers there are."""
    info = rt.billers.get(code) if isinstance(code, str) else None
    if info is None:
        known = ", ".join(b.code for b in rt.billers.catalog)
        raise InvalidInput(f"no biller {code!r}; the billers are {known} (GET /v1/billers)",
                           field="biller")
    return info


def check_account_number(info: BillerInfo, account_number) -> str:
    """The account number as the biller knows it, or INVALID_ACCOUNT_NUMBER saying what one
    looks like (the catalog's example)."""
    number = account_number.strip() if isinstance(account_number, str) else ""
    if not info.accepts(number):
        raise InvalidInput(f"that is not a {info.code} account number; "
                           f"one looks like {info.account_number_example}",
                           code="INVALID_ACCOUNT_NUMBER", field="account_number",
                           details={"example": info.account_number_example})
    return number


def create(uow: UnitOfWork, rt, *, payer: Payer, biller: str, account_number: str, amount: int,
           currency: str, now: datetime | None = None) -> BillPayment:
    """Pay `amount` of `currency` to `biller` for `account_number`, from the payer's wallet.

    Raises InvalidInput (unknown biller, an account number of the wrong shape, a currency
    the biller does not take, a bad amount), RailUnavailable (TIMM off for this mode) or
    InsufficientFunds, each before anything is written (the ledger's constraint is the
    last word on the balance, as for transfers)."""
    now = now or utcnow()
    info = biller_for(rt, biller)
    amounts.check_currency(currency)
    if currency not in info.currencies:
        raise InvalidInput(f"{info.code} takes {' or '.join(info.currencies)}",
                           code="INVALID_CURRENCY", field="currency")
    amounts.check_amount(amount)
    number = check_account_number(info, account_number)
    rt.billers.rail(payer.livemode)  # off for this mode: refused before anything is written
    wallet = wallets.find_wallet(uow, payer.kind, payer.id, currency, payer.livemode)
    if wallet is None or wallet.balance < amount:
        raise InsufficientFunds("insufficient funds")
    bp = BillPayment(id=new_id("bp"), livemode=payer.livemode, payer_type=payer.kind, payer_id=payer.id,
                     wallet_id=wallet.id, biller=info.code, account_number=number, amount=amount,
                     currency=currency, status=PENDING, status_checks=0, next_check_at=now, created_at=now)
    uow.session.add(bp)
    uow.session.flush()
    clearing = wallets.system_account(uow, "bill_clearing", currency, payer.livemode)
    ledger.post(uow, kind="bill_payment", obj_type="bill_payment", obj_id=bp.id, livemode=bp.livemode,
                currency=currency, legs=[(wallet.id, -amount), (clearing.id, amount)])
    record_event(uow, bp, "bill_payment.initiated")
    enqueue_after_commit(uow, rt.jobs, SETTLE_BILL_PAYMENT, bp.id)
    return bp


def get_for_payer(uow: UnitOfWork, payer: Payer, bill_payment_id: str) -> BillPayment:
    """The payment, for the payer who made it (anyone else, or the other mode: NotFound)."""
    bp = uow.session.get(BillPayment, bill_payment_id)
    if bp is None or (bp.payer_type, bp.payer_id, bp.livemode) != (payer.kind, payer.id, payer.livemode):
        raise NotFound("no such bill payment")
    return bp


def list_for_payer(uow: UnitOfWork, payer: Payer, *, limit: int,
                   before_id: str | None = None) -> list[BillPayment]:
    """The payer's bill payments, newest first, keyset-paged on the id."""
    q = select(BillPayment).where(BillPayment.payer_type == payer.kind, BillPayment.payer_id == payer.id,
                                  BillPayment.livemode == payer.livemode)
    if before_id:
        q = q.where(BillPayment.id < before_id)
    return list(uow.session.scalars(q.order_by(BillPayment.id.desc()).limit(limit)))


def recent_accounts(uow: UnitOfWork, payer: Payer, biller: str, limit: int = 3) -> list[str]:
    """The account numbers the payer last paid `biller` for, newest first, each once (the
    chat offers them)."""
    seen: list[str] = []
    q = select(BillPayment.account_number).where(
        BillPayment.payer_type == payer.kind, BillPayment.payer_id == payer.id,
        BillPayment.livemode == payer.livemode, BillPayment.biller == biller,
    ).order_by(BillPayment.id.desc()).limit(50)
    for number in uow.session.scalars(q):
        if number not in seen:
            seen.append(number)
            if len(seen) == limit:
                break
    return seen
