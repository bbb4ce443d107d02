"""PaymentIntents: a merchant asks a customer to pay, and the customer pays one way.

A payment is created `requires_payment_method` with a `client_secret` (shown once; only
its keyed hash is kept). Confirming it with a method moves it on:

- `soxara_wallet` + the customer's phone: `requires_action` while the customer is asked in
  WhatsApp (the `approvals` flow, started by a worker: core knows no bot); approved with
  the PIN it is `succeeded`, declined or left unanswered for APPROVAL_WINDOW it is back at
  `requires_payment_method` with `last_payment_error`. A merchant's test key paid by a
  sandbox buyer, or a person confirming their own payment with a step-up token, pays at
  once. Too little money: INSUFFICIENT_FUNDS, nothing moves, the payment stays payable.
- `mtn_momo` / `orange_money` + MSISDN: `requires_action` while the rail asks the customer
  on their phone; a worker asks the rail (`advance`, as deposits do) until it answers or
  RAIL_TIMEOUT passes: `succeeded` or `failed`.
- `card` (test mode only): `processing`; the card is charged right after the commit, with
  the number held only in memory, and the answer recorded in a transaction of its own:
  `succeeded`, `failed`, or `requires_action` (3-D Secure: the customer completes or fails
  the test step on the pay page, `authenticate`, and the charge then succeeds or fails
  `authentication_failed`; left alone it fails `authentication_expired` when
  APPROVAL_WINDOW passes). Only brand and last four are kept.

A rail is never called inside a request's transaction: the payment is committed first
with a due time (`next_check_at`), so a lost job or a killed process is found by the sweep,
and the payment's id is the rail's idempotency reference (one rail attempt per payment: a
rail failure is final, `failed`; the merchant makes a new payment).

Every change locks the payment's row first (`locked`), so a confirmation, a cancel, an
approval, the sweep and a refund (core/payments/refunds.py) take turns. Every money move
is one ledger entry: the source pays `amount`, the merchant gets `net`, the fees account
`fee` (core/payments/fees.py). Each state change records its `payment.*` event in the same
transaction; a failed attempt that leaves the payment payable records `payment.failed`
with the payment still `requires_payment_method` (as Stripe's payment_failed does).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Index, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from core import amounts, crypto, names, rails
from core.db import Base, UnitOfWork, UTCDateTime, utcnow
from core.errors import InsufficientFunds, InvalidInput, InvalidState, NotFound
from core.events import events
from core.identity import users
from core.ids import new_id, random_string
from core.jobs import ADVANCE_PAYMENT, enqueue_after_commit
from core.merchants import merchants
from core.payments import fees
from core.rails.cards import Card, CardResult, brand_of
from core.rails.sandbox import SandboxMobileMoney
from core.wallets import ledger, sandbox, wallets

log = logging.getLogger("soxara.payments")

APPROVAL_WINDOW = timedelta(minutes=15)  # a WhatsApp approval (or a card's 3-D Secure) waits this long
RAIL_TIMEOUT = timedelta(seconds=60)     # a mobile-money collection the rail never answers fails then
POLL_EVERY = timedelta(seconds=1)
CARD_RECHECK = timedelta(seconds=30)     # a card charge whose answer was never recorded is asked about then

STATUSES = ("requires_payment_method", "requires_action", "processing", "succeeded", "failed", "canceled")
METHODS = fees.METHODS
CANCELABLE = ("requires_payment_method", "requires_action")


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        Index("ix_payments_merchant", "merchant_id", "livemode", "id"),
        Index("ix_payments_payer", "payer_phone", "status"),
        # The database's own word that refunds never total more than was captured.
        CheckConstraint("amount_refunded >= 0 AND amount_refunded <= amount", name="refunds_within_amount"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # pi_…
    merchant_id: Mapped[str] = mapped_column(String(40))
    livemode: Mapped[bool] = mapped_column(Boolean)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    description: Mapped[str | None] = mapped_column(String(500), nullable=True)
    meta: Mapped[str | None] = mapped_column("metadata", Text, nullable=True)  # JSON object of strings
    customer_phone: Mapped[str | None] = mapped_column(String(20), nullable=True)
    status: Mapped[str] = mapped_column(String(30))
    client_secret_hash: Mapped[str] = mapped_column(String(64))
    method: Mapped[str | None] = mapped_column(String(20), nullable=True)
    payer_phone: Mapped[str | None] = mapped_column(String(20), nullable=True)
    payer_user_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    card_brand: Mapped[str | None] = mapped_column(String(20), nullable=True)
    card_last4: Mapped[str | None] = mapped_column(String(4), nullable=True)
    fee: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    amount_refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    fee_refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    next_action: Mapped[str | None] = mapped_column(String(30), nullable=True)
    action_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    approval_asked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # When a worker must next look at it (ask the customer, poll the rail, expire the
    # approval); None when nothing is pending.
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    last_error_code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    last_error_message: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    succeeded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    canceled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    @property
    def net(self) -> int | None:
        return None if self.fee is None else self.amount - self.fee


@dataclass(frozen=True)
class PaymentMethod:
    """How the customer pays: `type` one of METHODS; `phone` for the wallet and mobile
    money; `card` (held in memory only) for cards."""

    type: str
    phone: str | None = None
    card: Card | None = None


# --- what the world sees -----------------------------------------------------------------


def snapshot(p: Payment, public_url: str | None = None) -> dict:
    """The payment as the API and its events show it. With `public_url` (the API's
    answers; an event's snapshot has none), a card's 3-D Secure step says where it is done:
    the pay page, opened with the payment's client secret (`pay_url`, docs/payments.md)."""
    method = None
    if p.method is not None:
        method = {"type": p.method, "phone_number": p.payer_phone,
                  "card": {"brand": p.card_brand, "last4": p.card_last4} if p.card_last4 else None}
    return {
        "id": p.id, "object": "payment", "livemode": p.livemode, "amount": p.amount,
        "currency": p.currency, "fee": p.fee, "net": p.net, "amount_refunded": p.amount_refunded,
        "status": p.status, "description": p.description,
        "metadata": json.loads(p.meta) if p.meta else {}, "customer_phone": p.customer_phone,
        "payment_method": method,
        "next_action": _next_action(p, public_url),
        "last_payment_error": {"code": p.last_error_code, "message": p.last_error_message}
        if p.last_error_code else None,
        "created_at": events.iso(p.created_at), "succeeded_at": events.iso(p.succeeded_at),
        "canceled_at": events.iso(p.canceled_at), "failed_at": events.iso(p.failed_at),
    }


def _next_action(p: Payment, public_url: str | None) -> dict | None:
    if p.status != "requires_action" or not p.next_action:
        return None
    # Every field always written (null when absent), as every API object is.
    url = f"{public_url}/pay/{p.id}" if p.method == "card" and public_url else None
    return {"type": p.next_action, "expires_at": events.iso(p.action_expires_at), "url": url}


def _record(uow: UnitOfWork, p: Payment, *types: str) -> None:
    uow.session.flush()
    state = snapshot(p)
    for type_ in types:
        events.record(uow, type_, object_type="payment", object_id=p.id, snapshot=state,
                      livemode=p.livemode, merchant_id=p.merchant_id)


def _secret_hash(rt, secret: str) -> str:
    return crypto.keyed_hash(rt.secret_key, "client-secret", secret)


def description_shown(p: Payment) -> str | None:
    """The merchant's description as a customer reads it in the chat: one clean line, short."""
    return names.fit_to_show(p.description, 100)


def merchant_name(uow: UnitOfWork, p: Payment) -> str:
    """The merchant as the customer reads it (cleaned like every name shown to a person)."""
    return names.fit_to_show(merchants.get_merchant(uow, p.merchant_id).name) or "a Soxara merchant"


# --- create, read, list, cancel ------------------------------------------------------------


def create(uow: UnitOfWork, rt, *, merchant_id: str, livemode: bool, amount: int, currency: str,
           description: str | None = None, customer_phone: str | None = None,
           metadata: dict | None = None, now: datetime | None = None) -> tuple[Payment, str]:
    """A new payment, `requires_payment_method`, and its client secret (given only now)."""
    now = now or utcnow()
    amounts.check_amount(amount)
    amounts.check_currency(currency)
    if customer_phone is not None:
        _not_a_payer(uow, rt, merchant_id, customer_phone, "customer_phone")
    pid = new_id("pi")
    secret = f"{pid}_secret_{random_string(24)}"
    p = Payment(id=pid, merchant_id=merchant_id, livemode=livemode, amount=amount, currency=currency,
                description=description or None, meta=json.dumps(metadata, sort_keys=True) if metadata else None,
                customer_phone=customer_phone, status="requires_payment_method",
                client_secret_hash=_secret_hash(rt, secret), amount_refunded=0, fee_refunded=0, created_at=now)
    uow.session.add(p)
    _hold(uow, p)
    _record(uow, p, "payment.created")
    return p, secret


def _not_a_payer(uow: UnitOfWork, rt, merchant_id: str, phone: str, field: str) -> None:
    """Refuse a customer phone that cannot pay this merchant: Soxara's own WhatsApp number,
    or the merchant's own (a merchant paying itself would only move fees around)."""
    if phone == rt.settings.whatsapp_number:
        raise InvalidInput("that is Soxara's own WhatsApp number, not a customer's", field=field)
    if phone == merchants.get_merchant(uow, merchant_id).phone_number:
        raise InvalidInput("that is the merchant's own phone number: a merchant cannot pay itself", field=field)


def get_for_merchant(uow: UnitOfWork, merchant_id: str, livemode: bool, payment_id: str) -> Payment:
    p = uow.session.get(Payment, payment_id)
    if p is None or p.merchant_id != merchant_id or p.livemode != livemode:
        raise NotFound("no such payment")
    return p


def get_with_secret(uow: UnitOfWork, rt, payment_id: str, client_secret: str | None,
                    livemode: bool | None = None) -> Payment:
    """The payment for whoever holds its client secret (a customer, a pay page): NotFound
    for a wrong secret exactly as for an id that does not exist."""
    p = uow.session.get(Payment, payment_id)
    if p is None or not client_secret or (livemode is not None and p.livemode != livemode) \
            or not crypto.same(p.client_secret_hash, _secret_hash(rt, client_secret)):
        raise NotFound("no such payment")
    return p


def list_for_merchant(uow: UnitOfWork, merchant_id: str, livemode: bool, *, limit: int,
                      before_id: str | None = None, status: str | None = None,
                      customer_phone: str | None = None, created_gte: datetime | None = None,
                      created_lte: datetime | None = None) -> list[Payment]:
    """Newest first, keyset-paged on the id (ids grow with time)."""
    q = select(Payment).where(Payment.merchant_id == merchant_id, Payment.livemode == livemode)
    if before_id:
        q = q.where(Payment.id < before_id)
    if status:
        q = q.where(Payment.status == status)
    if customer_phone:
        q = q.where(Payment.customer_phone == customer_phone)
    if created_gte:
        q = q.where(Payment.created_at >= created_gte)
    if created_lte:
        q = q.where(Payment.created_at <= created_lte)
    return list(uow.session.scalars(q.order_by(Payment.id.desc()).limit(limit)))


def locked(uow: UnitOfWork, payment_id: str) -> Payment:
    """The payment's row, locked until the transaction ends, as it is now."""
    p = uow.session.scalar(select(Payment).where(Payment.id == payment_id).with_for_update()
                           .execution_options(populate_existing=True))
    if p is None:
        raise NotFound("no such payment")
    _hold(uow, p)
    return p


# The payments this transaction holds: locked by `locked`, or created by it. `confirm` pays
# only one of these, because a payment read without its lock can be confirmed by two
# requests at once and paid twice (a pay page that forgot the lock did: 7 times in 20 taps).
_HELD = "payments.held"


def _hold(uow: UnitOfWork, p: Payment) -> None:
    uow.held.setdefault(_HELD, set()).add(p.id)


def _held(uow: UnitOfWork, p: Payment) -> bool:
    return p.id in uow.held.get(_HELD, ())


def locked_for_merchant(uow: UnitOfWork, merchant_id: str, livemode: bool, payment_id: str) -> Payment:
    """`locked`, for the merchant's own payment in its mode (NotFound otherwise)."""
    p = locked(uow, payment_id)
    if p.merchant_id != merchant_id or p.livemode != livemode:
        raise NotFound("no such payment")
    return p


def cancel(uow: UnitOfWork, rt, *, merchant_id: str, livemode: bool, payment_id: str,
           now: datetime | None = None) -> Payment:
    """Cancel a payment not yet completed (INVALID_STATE otherwise). A mobile-money
    request already with the customer is not cancelable: the rail may still collect."""
    now = now or utcnow()
    p = locked_for_merchant(uow, merchant_id, livemode, payment_id)
    if p.status not in CANCELABLE or (p.status == "requires_action" and p.method in rails.MOBILE_MONEY):
        raise InvalidState(f"a {p.status} payment cannot be canceled")
    p.status, p.canceled_at, p.next_check_at, p.next_action = "canceled", now, None, None
    _record(uow, p, "payment.canceled")
    return p


# --- confirm ---------------------------------------------------------------------------------


def confirm(uow: UnitOfWork, rt, p: Payment, method: PaymentMethod, *, payer_user_id: str | None = None,
            now: datetime | None = None) -> Payment:
    """Pay `p` with `method`. `p` is locked by the caller (`locked_for_merchant`, or
    `locked` once its client secret was checked), or was created in this transaction.

    `payer_user_id`: the person confirming their own payment (a user token with a fresh
    step-up): their wallet pays at once. Raises InvalidState when the payment is not
    `requires_payment_method`, InvalidInput for a method this payment's mode cannot take,
    InsufficientFunds (nothing moves), RailUnavailable (503) for a rail that is off.
    """
    if not _held(uow, p):
        # A bug in the caller, never the customer's doing: refuse before anything moves.
        raise RuntimeError(f"payment {p.id} confirmed without its row lock: take payments.locked first")
    now = now or utcnow()
    if p.status != "requires_payment_method":
        raise InvalidState(f"this payment is {p.status}: only a payment that requires a payment method "
                           f"can be confirmed")
    if method.type == "soxara_wallet":
        return _confirm_wallet(uow, rt, p, method, payer_user_id, now)
    if method.type in rails.MOBILE_MONEY:
        return _confirm_mobile_money(uow, rt, p, method, now)
    if method.type == "card":
        return _confirm_card(uow, rt, p, method, now)
    raise InvalidInput(f"unknown payment method {method.type!r}", field="payment_method.type")


def _start_attempt(rt, p: Payment, method: str, phone: str | None) -> None:
    p.method, p.payer_phone, p.fee = method, phone, fees.fee_for(rt.settings, method, p.amount)
    p.card_brand = p.card_last4 = None
    p.last_error_code = p.last_error_message = None
    p.payer_user_id = None


def _confirm_wallet(uow: UnitOfWork, rt, p: Payment, method: PaymentMethod, payer_user_id: str | None,
                    now: datetime) -> Payment:
    field = "payment_method.phone_number"
    phone = method.phone or p.customer_phone
    if payer_user_id is not None:
        own = users.get(uow, payer_user_id).phone_number
        if phone is not None and phone != own:
            raise InvalidInput("a person pays from their own wallet: leave phone_number out or give yours",
                               field=field)
        phone = own
    if phone is None:
        raise InvalidInput("a soxara_wallet payment needs the customer's phone_number", field=field)
    _not_a_payer(uow, rt, p.merchant_id, phone, field)
    payer_id, buyer = sandbox.buyer_by_phone(uow, phone)
    if p.livemode and buyer:
        raise InvalidInput("that phone is a sandbox buyer: its test money pays only on a test key", field=field)
    if not buyer and rt.settings.user_mode_live != p.livemode:
        if p.livemode:
            raise InvalidInput("people on this sandbox deployment hold test money: take wallet payments "
                               "with a test key", field=field)
        raise InvalidInput("a test key takes wallet payments only from sandbox buyers "
                           "(soxara sandbox buyer --phone …)", field=field)
    _start_attempt(rt, p, "soxara_wallet", phone)
    if payer_id is not None and (buyer or payer_user_id is not None):
        # Paid at once: the sandbox buyer of a test key, or the person themselves, whose
        # step-up token is their PIN.
        _pay_from_wallet(uow, rt, p, payer_id, now)
        return p
    p.status, p.next_action = "requires_action", "whatsapp_approval"
    p.action_expires_at = now + APPROVAL_WINDOW
    p.approval_asked_at, p.next_check_at = None, now  # due at once: a worker asks in the chat
    _record(uow, p, "payment.requires_action")
    enqueue_after_commit(uow, rt.jobs, ADVANCE_PAYMENT, p.id)
    return p


def _confirm_mobile_money(uow: UnitOfWork, rt, p: Payment, method: PaymentMethod, now: datetime) -> Payment:
    field = "payment_method.phone_number"
    phone = method.phone or p.customer_phone
    if phone is None:
        raise InvalidInput(f"a {method.type} payment needs the customer's phone_number", field=field)
    _not_a_payer(uow, rt, p.merchant_id, phone, field)
    if p.livemode and SandboxMobileMoney.is_test_number(phone):
        raise InvalidInput("that is a sandbox test number: use it with a test key", field=field)
    rt.rails.collection(method.type, p.livemode)  # off for this mode: 503 before anything is written
    _start_attempt(rt, p, method.type, phone)
    p.status, p.next_action = "requires_action", "mobile_money_approval"
    p.action_expires_at, p.started_at, p.next_check_at = None, None, now
    _record(uow, p, "payment.requires_action")
    enqueue_after_commit(uow, rt.jobs, ADVANCE_PAYMENT, p.id)
    return p


def _confirm_card(uow: UnitOfWork, rt, p: Payment, method: PaymentMethod, now: datetime) -> Payment:
    card = method.card
    if card is None:
        raise InvalidInput("a card payment needs card: {number, exp_month, exp_year, cvc}", field="payment_method.card")
    if p.livemode:
        raise InvalidInput("cards are taken in test mode only, with the test cards: use a test key",
                           field="payment_method.type")
    rail = rt.rails.cards(p.livemode)
    _start_attempt(rt, p, "card", None)
    digits = card.digits
    p.card_brand, p.card_last4 = brand_of(digits), digits[-4:] if len(digits) >= 4 else None
    p.status, p.next_action, p.started_at = "processing", None, now
    p.next_check_at = now + CARD_RECHECK  # if the answer below is never recorded, the sweep asks
    payment_id, amount, currency = p.id, p.amount, p.currency
    # The number lives only in this closure.
    _ask_card_rail_after_commit(uow, rt, payment_id, "card charge", lambda: rail.charge(
        reference=payment_id, card=card, amount=amount, currency=currency, now=utcnow()))
    return p


def _ask_card_rail_after_commit(uow: UnitOfWork, rt, payment_id: str, what: str,
                                call: Callable[[], CardResult]) -> None:
    """Once `uow` commits (the payment `processing`, due for the sweep at CARD_RECHECK),
    ask the card rail outside any transaction, then record its answer in a transaction of
    its own: no row is locked while the network thinks."""

    def ask() -> None:
        try:
            result = call()
        except Exception:
            log.exception("%s for %s raised; the sweep asks the rail later", what, payment_id)
            return
        with rt.uow() as after:
            record_card_result(after, rt, payment_id, result)
            after.commit()

    uow.after_commit(ask)


# --- settling --------------------------------------------------------------------------------


def _accounts(uow: UnitOfWork, p: Payment, source: tuple[str, str]) -> dict[tuple[str, str], wallets.Wallet]:
    """The source's, the merchant's and the fees account's wallets, in one round trip."""
    owners = [source, (wallets.MERCHANT, p.merchant_id), (wallets.SYSTEM, "fees")]
    return wallets.wallets_of(uow, owners, p.currency, p.livemode)


def _settle(uow: UnitOfWork, rt, p: Payment, source: tuple[str, str], now: datetime,
            accounts: dict[tuple[str, str], wallets.Wallet] | None = None) -> None:
    """The money moves: `amount` from the source (an owner: a user, or a system account's
    code), `net` to the merchant, `fee` to the fees account, in one entry; then
    `succeeded` and its event."""
    fee = p.fee or 0
    merchant, fees_account = (wallets.MERCHANT, p.merchant_id), (wallets.SYSTEM, "fees")
    accounts = accounts or _accounts(uow, p, source)
    ledger.post(uow, kind="payment", obj_type="payment", obj_id=p.id, livemode=p.livemode, currency=p.currency,
                legs=[(accounts[source].id, -p.amount), (accounts[merchant].id, p.amount - fee),
                      (accounts[fees_account].id, fee)])
    p.status, p.succeeded_at, p.next_check_at, p.next_action = "succeeded", now, None, None
    p.action_expires_at = None
    _record(uow, p, "payment.succeeded")


def _pay_from_wallet(uow: UnitOfWork, rt, p: Payment, user_id: str, now: datetime) -> None:
    """`_settle` from the person's wallet. Its balance is read fresh with the merchant's
    and the fees account's: too little is refused before anything is written; the
    ledger's CHECK stays the rule for a balance spent concurrently (at the commit)."""
    payer = (wallets.USER, user_id)
    accounts = _accounts(uow, p, payer)
    if accounts[payer].balance < p.amount:
        raise InsufficientFunds("insufficient funds")
    p.payer_user_id = user_id
    _settle(uow, rt, p, payer, now, accounts)


def _fail(uow: UnitOfWork, p: Payment, code: str | None, message: str | None, now: datetime) -> None:
    p.status, p.failed_at, p.next_check_at, p.next_action = "failed", now, None, None
    p.last_error_code, p.last_error_message = code or "failed", (message or "")[:200] or None
    _record(uow, p, "payment.failed")


def _back_to_payable(uow: UnitOfWork, p: Payment, code: str, message: str) -> None:
    """The attempt failed but the payment stays payable (another method, another try)."""
    p.status, p.next_check_at, p.next_action, p.action_expires_at = "requires_payment_method", None, None, None
    p.last_error_code, p.last_error_message = code, message
    _record(uow, p, "payment.failed")


def record_card_result(uow: UnitOfWork, rt, payment_id: str, result: CardResult,
                       now: datetime | None = None) -> Payment:
    """The card network's answer about the payment's charge, recorded once: only a
    `processing` card payment moves."""
    now = now or utcnow()
    p = locked(uow, payment_id)
    if p.status != "processing" or p.method != "card":
        return p
    if result.status == "succeeded":
        _settle(uow, rt, p, (wallets.SYSTEM, "card_clearing"), now)
    elif result.status == "failed":
        _fail(uow, p, result.failure_code, result.message, now)
    elif result.status == "requires_action":
        p.status, p.next_action = "requires_action", result.action or "3ds_authentication"
        p.action_expires_at = p.next_check_at = now + APPROVAL_WINDOW
        _record(uow, p, "payment.requires_action")
    elif result.status == "not_found":
        _fail(uow, p, "charge_incomplete", "the card was not charged; nothing was taken", now)
    else:  # pending: ask again later
        p.next_check_at = now + POLL_EVERY
    return p


# --- a card's 3-D Secure (test mode) ----------------------------------------------------------


def authenticate(uow: UnitOfWork, rt, payment_id: str, *, completed: bool,
                 now: datetime | None = None) -> Payment:
    """The customer's 3-D Secure step on a test card payment waiting for it, completed or
    failed (the sandbox has no bank page: the pay page offers both outcomes). Under the
    row lock the payment goes back to `processing`; after the commit the card rail gives
    the charge's final answer, recorded as a charge's is (`record_card_result`):
    `succeeded` with the ledger entry, or `failed` `authentication_failed`, nothing moved.

    InvalidState for a payment that is not a test card payment in `requires_action` (a
    second tap finds it `processing` or done). Once the step's time has passed the payment
    fails `authentication_expired` here, as the sweep would have failed it."""
    now = now or utcnow()
    p = locked(uow, payment_id)
    if p.livemode or p.method != "card" or p.status != "requires_action":
        raise InvalidState(f"this payment is {p.status}: only a test card payment waiting for its "
                           f"authentication can be authenticated")
    if p.action_expires_at is not None and now >= p.action_expires_at:
        _fail(uow, p, "authentication_expired", "the card's authentication was not completed", now)
        return p
    rail = rt.rails.cards(p.livemode)
    p.status, p.next_action, p.action_expires_at = "processing", None, None
    p.next_check_at = now + CARD_RECHECK  # an answer never recorded: the sweep asks the rail
    _ask_card_rail_after_commit(uow, rt, p.id, "card authentication",
                                lambda: rail.authenticate(reference=payment_id, completed=completed))
    return p


# --- the WhatsApp approval -------------------------------------------------------------------


def awaiting(uow: UnitOfWork, phone: str, now: datetime | None = None) -> list[Payment]:
    """Wallet payments waiting for this phone's approval, oldest first."""
    now = now or utcnow()
    return list(uow.session.scalars(
        select(Payment).where(Payment.payer_phone == phone, Payment.status == "requires_action",
                              Payment.method == "soxara_wallet", Payment.action_expires_at > now)
        .order_by(Payment.id)))


def _awaited(uow: UnitOfWork, payment_id: str, phone: str, now: datetime) -> Payment:
    p = locked(uow, payment_id)
    if p.payer_phone != phone or p.method != "soxara_wallet":
        raise NotFound("no such payment request")
    if p.status != "requires_action" or p.action_expires_at is None or p.action_expires_at <= now:
        raise InvalidState("this payment request is no longer waiting: it was answered, canceled or expired")
    return p


def approve(uow: UnitOfWork, rt, payment_id: str, *, user_id: str, phone: str,
            now: datetime | None = None) -> Payment:
    """The customer approved with their PIN (judged by the caller): their wallet pays.
    InsufficientFunds leaves everything as it was (the caller then calls `short_of_funds`)."""
    now = now or utcnow()
    p = _awaited(uow, payment_id, phone, now)
    _pay_from_wallet(uow, rt, p, user_id, now)
    return p


def decline(uow: UnitOfWork, rt, payment_id: str, *, phone: str, now: datetime | None = None) -> Payment:
    now = now or utcnow()
    p = _awaited(uow, payment_id, phone, now)
    _back_to_payable(uow, p, "customer_declined", "the customer declined the payment")
    return p


def short_of_funds(uow: UnitOfWork, rt, payment_id: str, *, phone: str, now: datetime | None = None) -> Payment:
    """The customer approved but their wallet holds too little: the payment stays payable."""
    now = now or utcnow()
    p = _awaited(uow, payment_id, phone, now)
    _back_to_payable(uow, p, "INSUFFICIENT_FUNDS", "the customer's wallet holds too little")
    return p


# --- the worker's side: ask, poll, expire ------------------------------------------------------

# How a worker asks a customer in the chat: (uow, payment, merchant's name) -> None. Core
# knows no bot: workers/payments.py passes the approvals flow's starter.
AskCustomer = Callable[[UnitOfWork, Payment, str], None]


def advance(uow: UnitOfWork, rt, payment_id: str, *, ask: AskCustomer | None = None,
            now: datetime | None = None) -> Payment | None:
    """Whatever is due on one payment: ask the customer in the chat, ask the rail, expire an
    approval. Safe to run twice: the row is locked and only what is due moves."""
    now = now or utcnow()
    p = uow.session.scalar(select(Payment).where(Payment.id == payment_id).with_for_update()
                           .execution_options(populate_existing=True))
    if p is None or p.status not in ("requires_action", "processing") or p.next_check_at is None:
        return p
    if p.method == "soxara_wallet":
        assert p.action_expires_at is not None
        if now >= p.action_expires_at:
            _back_to_payable(uow, p, "approval_expired", "the customer did not answer in time")
        elif p.approval_asked_at is None and ask is not None:
            ask(uow, p, merchant_name(uow, p))
            p.approval_asked_at, p.next_check_at = now, p.action_expires_at
        return p
    if p.method in rails.MOBILE_MONEY:
        _advance_mobile_money(uow, rt, p, now)
    elif p.method == "card":
        if p.status == "requires_action":  # 3-D Secure never completed
            if p.action_expires_at is not None and now >= p.action_expires_at:
                _fail(uow, p, "authentication_expired", "the card's authentication was not completed", now)
        else:
            record_card_result(uow, rt, p.id, rt.rails.cards(p.livemode).status(reference=p.id), now)
    return p


def _advance_mobile_money(uow: UnitOfWork, rt, p: Payment, now: datetime) -> None:
    assert p.method is not None and p.payer_phone is not None
    try:
        rail = rt.rails.collection(p.method, p.livemode)
    except rails.RailUnavailable as off:
        result = rails.RailResult("failed", "rail_unavailable", off.message) if p.started_at is None \
            else rails.RailResult("pending")
    else:
        if p.started_at is None:
            p.started_at = now
            result = rail.start_collection(reference=p.id, phone=p.payer_phone, amount=p.amount,
                                           currency=p.currency, now=now)
        else:
            result = rail.collection_status(reference=p.id, phone=p.payer_phone, started_at=p.started_at, now=now)
    if result.status == "pending" and p.started_at is not None and now - p.started_at >= RAIL_TIMEOUT:
        result = rails.RailResult("failed", "timeout", "the mobile money network did not answer")
    if result.status == "succeeded":
        _settle(uow, rt, p, (wallets.SYSTEM, "cash_in_clearing"), now)
    elif result.status == "failed":
        _fail(uow, p, result.failure_code, result.message, now)
    else:
        p.next_check_at = now + POLL_EVERY


def due(uow: UnitOfWork, now: datetime, limit: int = 200) -> list[str]:
    """Payments a worker must look at now, oldest due first (the sweep's list)."""
    return list(uow.session.scalars(
        select(Payment.id).where(Payment.status.in_(("requires_action", "processing")),
                                 Payment.next_check_at <= now)
        .order_by(Payment.next_check_at).limit(limit)))
