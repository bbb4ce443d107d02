"""Settling a bill payment: what the worker does after `bill_payments.create` committed.

Each call to TIMM is three steps, and no transaction is open while TIMM is asked:

1. `take`, a transaction of its own: claims the payment's next call by a conditional
   UPDATE. A `pending` payment becomes `processing` (and `submitted_at` is set) for its
   one `pay`; a `processing` one that is due has its due time moved past the call (a
   lease, `ASKING`) for one `status` query. Two workers running the same job at once:
   one UPDATE matches, the other does nothing. So TIMM is asked to pay once, ever.
2. `ask`: `pay` the first time, with our payment id as TIMM's idempotency reference;
   `status` every time after. A time-out (or a call that raised: nobody knows whether
   TIMM took it) is never repeated as a payment: the next call is a status query.
3. `settle`, a transaction of its own, under the row's lock: only a payment still
   `processing` moves. `succeeded`: one ledger entry from bill clearing to what Soxara
   owes TIMM (`biller_settlement`), the token kept. `failed`: one entry from bill clearing
   back to the payer's wallet. Still pending: the next status query is due per `CHECKS`.
   Each outcome writes its event and, for a person, their WhatsApp messages.

A worker that dies after `take` leaves the payment `processing` with its lease: once the
lease ends the sweep asks TIMM how it stands (a reference TIMM never received is
`failed` there, and refunded), never pays again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from core.amounts import format_amount
from core.billers import BillResult
from core.bills.bill_payments import (
    FAILED,
    PENDING,
    PROCESSING,
    SUCCEEDED,
    BillPayment,
    format_token,
    record_event,
)
from core.db import UnitOfWork, rowcount
from core.identity import users
from core.messaging import outbox
from core.rails import RailUnavailable
from core.retry import Backoff
from core.wallets import ledger, wallets

log = logging.getLogger("soxara.bills")

# How long a worker holds a payment while TIMM is asked: longer than any answer takes (a
# real adapter times out within seconds). A worker that died holding it is relieved then.
ASKING = timedelta(seconds=60)
# Status queries after a pending answer: every second while the sandbox's 5 s and a real
# biller's usual few seconds run, then further apart; after the last, once an hour until
# TIMM answers. Never given up with a refund: TIMM may have paid the bill.
CHECKS = Backoff((1,) * 10 + (5, 15, 30, 60, 300, 900, 1800))
KEEP_ASKING_EVERY = timedelta(hours=1)


@dataclass(frozen=True)
class BillerCall:
    """The call to TIMM a worker has claimed (`take`): plain data, read while the claim
    committed, used with no transaction open."""

    bill_payment_id: str
    livemode: bool
    biller: str
    account_number: str
    amount: int
    currency: str
    submitted_at: datetime
    pay: bool  # True: the payment's one `pay`; False: a `status` query


def take(uow: UnitOfWork, bill_payment_id: str, now: datetime) -> BillerCall | None:
    """Claim the payment's next call to TIMM, or None when there is none to make now
    (settled already, or another worker holds it, or not due yet)."""
    bp = BillPayment
    paying = uow.session.execute(
        update(bp).where(bp.id == bill_payment_id, bp.status == PENDING)
        .values(status=PROCESSING, submitted_at=now, next_check_at=now + ASKING)
        .execution_options(synchronize_session=False))
    pay = rowcount(paying) == 1
    if not pay:
        asking = uow.session.execute(
            update(bp).where(bp.id == bill_payment_id, bp.status == PROCESSING, bp.next_check_at <= now)
            .values(status_checks=bp.status_checks + 1, next_check_at=now + ASKING)
            .execution_options(synchronize_session=False))
        if rowcount(asking) != 1:
            return None
    row = uow.session.execute(
        select(bp.livemode, bp.biller, bp.account_number, bp.amount, bp.currency, bp.submitted_at)
        .where(bp.id == bill_payment_id)).one()
    assert row.submitted_at is not None  # set by the first call's claim, above or before
    return BillerCall(bill_payment_id, row.livemode, row.biller, row.account_number, row.amount, row.currency,
                      row.submitted_at, pay)


def ask(rt, call: BillerCall, now: datetime) -> BillResult:
    """Ask TIMM: `pay` (the first call) or `status`. Runs with no transaction open."""
    try:
        rail = rt.billers.rail(call.livemode)
    except RailUnavailable as off:
        # Off for this mode (production turned the sandbox off for live money after the
        # payment was made). Never paid: it fails now and is refunded. Paid: no answer
        # until TIMM is back.
        if call.pay:
            return BillResult("failed", failure_code="rail_unavailable", message=off.message)
        return BillResult("pending")
    common = dict(reference=call.bill_payment_id, biller=call.biller, account_number=call.account_number,
                  amount=call.amount, currency=call.currency)
    try:
        if call.pay:
            return rail.pay(**common, now=now)
        return rail.status(**common, started_at=call.submitted_at, now=now)
    except Exception:
        # Not an answer: TIMM may have taken the payment. Asked about again, never repaid.
        log.exception("TIMM: the %s of %s raised; asking again later", "pay" if call.pay else "status",
                      call.bill_payment_id)
        return BillResult("pending", timed_out=call.pay)


def settle(uow: UnitOfWork, rt, call: BillerCall, result: BillResult, now: datetime) -> BillPayment | None:
    """Act on TIMM's answer, under the payment's lock: only a payment still `processing`
    moves (another worker may have settled it since `take`)."""
    bp = uow.session.scalar(select(BillPayment).where(BillPayment.id == call.bill_payment_id)
                            .with_for_update().execution_options(populate_existing=True))
    if bp is None or bp.status != PROCESSING:
        return bp
    clearing = wallets.system_account(uow, "bill_clearing", bp.currency, bp.livemode)
    if result.status == SUCCEEDED:
        owed = wallets.system_account(uow, "biller_settlement", bp.currency, bp.livemode)
        ledger.post(uow, kind="bill_paid", obj_type="bill_payment", obj_id=bp.id, livemode=bp.livemode,
                    currency=bp.currency, legs=[(clearing.id, -bp.amount), (owed.id, bp.amount)])
        bp.status, bp.token, bp.units = SUCCEEDED, result.token, result.units
        bp.settled_at, bp.next_check_at = now, None
        record_event(uow, bp, "bill_payment.succeeded")
        _tell_payer(uow, rt, bp, *paid_notices(rt, bp))
    elif result.status == FAILED:
        ledger.post(uow, kind="bill_refund", obj_type="bill_payment", obj_id=bp.id, livemode=bp.livemode,
                    currency=bp.currency, legs=[(clearing.id, -bp.amount), (bp.wallet_id, bp.amount)])
        bp.status, bp.settled_at, bp.next_check_at = FAILED, now, None
        bp.failure_code = (result.failure_code or "failed")[:40]
        bp.failure_message = (result.message or "the biller refused the payment")[:200]
        record_event(uow, bp, "bill_payment.failed")
        _tell_payer(uow, rt, bp, failed_notice(rt, bp))
    else:
        bp.next_check_at = (CHECKS.next_attempt_at(bp.status_checks + 1, now)
                            or now + KEEP_ASKING_EVERY)
    return bp


def due(uow: UnitOfWork, now: datetime, limit: int = 200) -> list[str]:
    """Payments the worker is due to act on (pay, or ask again), oldest due first: the
    sweep (workers/bills.py) hands each to the job's function."""
    return list(uow.session.scalars(
        select(BillPayment.id).where(BillPayment.status.in_((PENDING, PROCESSING)),
                                     BillPayment.next_check_at <= now)
        .order_by(BillPayment.next_check_at).limit(limit)))


# --- what the payer is told (a person, by WhatsApp; a merchant hears by its events) -----

def _what_for(rt, bp: BillPayment) -> str:
    info = rt.billers.get(bp.biller)
    meter = info is not None and info.prepaid and info.category == "electricity"
    return f"{'meter' if meter else 'account'} {bp.account_number}"


def paid_notices(rt, bp: BillPayment) -> list[str]:
    """The receipt, and for prepaid electricity the token as a message of its own, so
    that it is copied into the meter whole."""
    money = format_amount(bp.amount, bp.currency)
    if not bp.token:
        return [f"Your {bp.biller} bill is paid: {money} for {_what_for(rt, bp)}.\nRef {bp.id}"]
    units = f" ({bp.units})" if bp.units else ""
    return [f"Your {bp.biller} payment went through: {money}{units} for {_what_for(rt, bp)}. "
            f"Your token is in the next message: type it into your meter.\nRef {bp.id}",
            format_token(bp.token) or ""]


def failed_notice(rt, bp: BillPayment) -> str:
    return (f"Your {bp.biller} payment of {format_amount(bp.amount, bp.currency)} for {_what_for(rt, bp)} "
            f"did not go through: {bp.failure_message}. The money is back in your wallet.\nRef {bp.id}")


def _tell_payer(uow: UnitOfWork, rt, bp: BillPayment, *texts: str) -> None:
    if bp.payer_type != wallets.USER:
        return
    phone = users.get(uow, bp.payer_id).phone_number
    for text in texts:
        outbox.send_whatsapp(uow, rt, phone, text)
