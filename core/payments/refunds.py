"""Refunds: money from a succeeded payment back to where it came from.

Partial and repeated, and never more in total than was captured, even when refunds race:
`create` locks the payment's row, reads what is left (`amount - amount_refunded`), and
raises `amount_refunded` in the same transaction. A pending or succeeded refund counts; a
failed one gives its amount back.

The merchant pays the refund out of its wallet, less the share of the fee that goes back
with it (core/payments/fees.py `fee_returned`), which the fees account pays.

- A wallet payment is refunded at once: the customer's wallet is credited, `succeeded`.
- MoMo, Orange and card go back over the rail: the money leaves the merchant's wallet for
  the `refunds_pending` account at once (`pending`), then a worker asks the rail (our
  refund id is its idempotency reference): `succeeded` moves it out to the rail's clearing
  account; `failed` puts it back in the merchant's wallet (and the fee's share in the fees
  account), and the payment's `amount_refunded` goes down again.

Lock order: a refund's row, then its payment's (never the reverse), then wallets by id.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import BigInteger, Boolean, Index, String, select
from sqlalchemy.orm import Mapped, mapped_column

from core import amounts, rails
from core.db import Base, UnitOfWork, UTCDateTime, utcnow
from core.errors import InvalidState, NotFound, Refused
from core.events import events
from core.ids import new_id
from core.jobs import ADVANCE_REFUND, enqueue_after_commit
from core.payments import fees
from core.payments.payments import Payment, get_for_merchant, locked, locked_for_merchant
from core.wallets import ledger, wallets

POLL_EVERY = timedelta(seconds=5)  # a rail refund is asked about this often until it answers
# Where money paid in by each rail went, and so where its refunds go out to.
CLEARING = {"mtn_momo": "cash_in_clearing", "orange_money": "cash_in_clearing", "card": "card_clearing"}


class RefundExceedsPayment(Refused):
    code = "REFUND_EXCEEDS_PAYMENT"


class Refund(Base):
    __tablename__ = "refunds"
    __table_args__ = (Index("ix_refunds_payment", "payment_id", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # re_…
    payment_id: Mapped[str] = mapped_column(String(40))
    merchant_id: Mapped[str] = mapped_column(String(40))
    livemode: Mapped[bool] = mapped_column(Boolean)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    fee_returned: Mapped[int] = mapped_column(BigInteger)
    method: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[str] = mapped_column(String(12))  # pending | succeeded | failed
    failure_code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    failure_message: Mapped[str | None] = mapped_column(String(200), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


def snapshot(r: Refund) -> dict:
    return {
        "id": r.id, "object": "refund", "livemode": r.livemode, "payment": r.payment_id, "amount": r.amount,
        "currency": r.currency, "status": r.status, "reason": r.reason,
        "failure_code": r.failure_code, "failure_message": r.failure_message,
        "created_at": events.iso(r.created_at), "settled_at": events.iso(r.settled_at),
    }


def _record(uow: UnitOfWork, r: Refund, *types: str) -> None:
    uow.session.flush()
    state = snapshot(r)
    for type_ in types:
        events.record(uow, type_, object_type="refund", object_id=r.id, snapshot=state, livemode=r.livemode,
                      merchant_id=r.merchant_id)


def create(uow: UnitOfWork, rt, *, merchant_id: str, livemode: bool, payment_id: str, amount: int | None = None,
           reason: str | None = None, now: datetime | None = None) -> Refund:
    """Refund `amount` (all that is left when None) of the merchant's succeeded payment.

    Raises InvalidState (the payment did not succeed), RefundExceedsPayment (more than is
    left), InsufficientFunds (the merchant's wallet holds too little; nothing moves).
    """
    now = now or utcnow()
    p = locked_for_merchant(uow, merchant_id, livemode, payment_id)  # refunds of one payment take turns from here
    if p.status != "succeeded":
        raise InvalidState(f"only a succeeded payment can be refunded; this one is {p.status}")
    left = p.amount - p.amount_refunded
    if amount is None:
        amount = left
    if amount <= 0 or amount > left:
        raise RefundExceedsPayment(
            f"refunds of this payment may total {amounts.format_amount(p.amount, p.currency)}; "
            f"{amounts.format_amount(left, p.currency)} is left to refund",
            details={"amount": p.amount, "amount_refunded": p.amount_refunded})
    amounts.check_amount(amount)
    fee = p.fee or 0
    # Clamped: after a failed refund gave its share back, the running share may be off by
    # a cent either way; the last refund still brings the total to exactly the fee.
    fee_share = min(amount, max(0, fees.fee_returned(fee, p.amount, p.amount_refunded + amount) - p.fee_refunded))
    assert p.method is not None
    r = Refund(id=new_id("re"), payment_id=p.id, merchant_id=p.merchant_id, livemode=p.livemode, amount=amount,
               currency=p.currency, fee_returned=fee_share, method=p.method, reason=reason or None,
               status="pending", created_at=now)
    uow.session.add(r)
    p.amount_refunded += amount
    p.fee_refunded += fee_share
    if p.method == "soxara_wallet":
        assert p.payer_user_id is not None
        to = (wallets.USER, p.payer_user_id)
        r.status, r.settled_at = "succeeded", now
    else:
        to = (wallets.SYSTEM, "refunds_pending")
        r.next_check_at = now
    merchant, fees_account = (wallets.MERCHANT, p.merchant_id), (wallets.SYSTEM, "fees")
    accounts = wallets.wallets_of(uow, [merchant, fees_account, to], p.currency, p.livemode)
    uow.session.flush()
    ledger.post(uow, kind="refund", obj_type="refund", obj_id=r.id, livemode=r.livemode, currency=r.currency,
                legs=[(accounts[merchant].id, -(amount - fee_share)), (accounts[fees_account].id, -fee_share),
                      (accounts[to].id, amount)])
    _record(uow, r, "refund.created", *(("refund.succeeded",) if r.status == "succeeded" else ()))
    if r.status == "pending":
        enqueue_after_commit(uow, rt.jobs, ADVANCE_REFUND, r.id)
    return r


def get_for_merchant_refund(uow: UnitOfWork, merchant_id: str, livemode: bool, refund_id: str) -> Refund:
    r = uow.session.get(Refund, refund_id)
    if r is None or r.merchant_id != merchant_id or r.livemode != livemode:
        raise NotFound("no such refund")
    return r


def list_for_payment(uow: UnitOfWork, merchant_id: str, livemode: bool, payment_id: str, *, limit: int,
                     before_id: str | None = None) -> list[Refund]:
    get_for_merchant(uow, merchant_id, livemode, payment_id)
    q = select(Refund).where(Refund.payment_id == payment_id)
    if before_id:
        q = q.where(Refund.id < before_id)
    return list(uow.session.scalars(q.order_by(Refund.id.desc()).limit(limit)))


def advance(uow: UnitOfWork, rt, refund_id: str, now: datetime | None = None) -> Refund | None:
    """Send (or ask about) one pending rail refund and act on the rail's answer. Safe to run
    twice: the refund's row is locked and only a pending refund moves. A rail that does
    not answer leaves it pending (money may be on its way: never failed by a timeout)."""
    now = now or utcnow()
    r = uow.session.scalar(select(Refund).where(Refund.id == refund_id).with_for_update()
                           .execution_options(populate_existing=True))
    if r is None or r.status != "pending":
        return r
    p = uow.session.get(Payment, r.payment_id)
    assert p is not None
    result = _ask_rail(rt, r, p, now)
    pending = wallets.system_account(uow, "refunds_pending", r.currency, r.livemode)
    if result.status == "succeeded":
        out = wallets.system_account(uow, CLEARING[r.method], r.currency, r.livemode)
        ledger.post(uow, kind="refund_paid", obj_type="refund", obj_id=r.id, livemode=r.livemode,
                    currency=r.currency, legs=[(pending.id, -r.amount), (out.id, r.amount)])
        r.status, r.settled_at, r.next_check_at = "succeeded", now, None
        _record(uow, r, "refund.succeeded")
    elif result.status == "failed":
        p = locked(uow, r.payment_id)
        merchant = wallets.wallet_for(uow, wallets.MERCHANT, r.merchant_id, r.currency, r.livemode)
        fees_account = wallets.system_account(uow, "fees", r.currency, r.livemode)
        ledger.post(uow, kind="refund_failed", obj_type="refund", obj_id=r.id, livemode=r.livemode,
                    currency=r.currency, legs=[(pending.id, -r.amount), (merchant.id, r.amount - r.fee_returned),
                                               (fees_account.id, r.fee_returned)])
        p.amount_refunded -= r.amount
        p.fee_refunded -= r.fee_returned
        r.status, r.settled_at, r.next_check_at = "failed", now, None
        r.failure_code, r.failure_message = result.failure_code or "failed", (result.message or "")[:200] or None
        _record(uow, r, "refund.failed")
    else:
        r.next_check_at = now + POLL_EVERY
    return r


def _ask_rail(rt, r: Refund, p: Payment, now: datetime) -> rails.RailResult:
    if r.method == "card":
        answer = rt.rails.cards(r.livemode).refund(reference=r.id, charge_reference=p.id, amount=r.amount,
                                                   currency=r.currency)
        if answer.status in ("succeeded", "failed"):
            return rails.RailResult(answer.status, answer.failure_code, answer.message)
        return rails.RailResult("pending")
    try:
        rail = rt.rails.collection(r.method, r.livemode)
    except rails.RailUnavailable:
        return rails.RailResult("pending")  # the money waits in refunds_pending until it is back
    assert p.payer_phone is not None
    if r.started_at is None:
        r.started_at = now
        return rail.start_refund(reference=r.id, collection_reference=p.id, phone=p.payer_phone, amount=r.amount,
                                 currency=r.currency, now=now)
    return rail.refund_status(reference=r.id, phone=p.payer_phone, started_at=r.started_at, now=now)


def due(uow: UnitOfWork, now: datetime, limit: int = 200) -> list[str]:
    return list(uow.session.scalars(
        select(Refund.id).where(Refund.status == "pending", Refund.next_check_at <= now)
        .order_by(Refund.next_check_at).limit(limit)))
