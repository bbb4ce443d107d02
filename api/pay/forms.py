"""What the pay page's forms carry: the token that ties a form to its payment, and what
the customer typed, read into core's PaymentMethod.

Each rendering of the page is one attempt: a random `attempt` id and a token, the HMAC
(under a key derived from SOXARA_SECRET_KEY) of the payment id, its client secret and
the attempt. A POST without the token of this payment and secret is refused (403): no
other page can make a customer's browser submit one. The attempt id is also the POST's
idempotency key (scope `pay:<payment>`), so a double-tapped Pay button runs once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from api.pay import words
from core import crypto
from core.errors import InvalidInput
from core.ids import random_string
from core.payments import payments
from core.phones import normalise_local
from core.rails.cards import Card

PAYMENT_ID = re.compile(r"\Api_[A-Za-z0-9]{1,37}\Z")
MAX_SECRET = 100
ATTEMPT = re.compile(r"\A[A-Za-z0-9]{16,40}\Z")
_EXPIRY = re.compile(r"\A(\d{1,2})\s*/?\s*(\d{2}|\d{4})\Z")


def shaped(payment_id: str, client_secret: str | None) -> bool:
    """Whether the id and secret could be real, before anything is looked up."""
    return bool(PAYMENT_ID.match(payment_id)) and bool(client_secret) and len(client_secret or "") <= MAX_SECRET


def _token(rt, payment_id: str, client_secret: str, attempt: str) -> str:
    return crypto.keyed_hash(rt.secret_key, "pay-page-form", f"{payment_id}\n{client_secret}\n{attempt}")


@dataclass(frozen=True)
class FormTokens:
    client_secret: str
    attempt: str
    csrf: str


def new_form(rt, payment_id: str, client_secret: str) -> FormTokens:
    attempt = random_string(24)
    return FormTokens(client_secret, attempt, _token(rt, payment_id, client_secret, attempt))


def token_ok(rt, payment_id: str, client_secret: str, attempt: str | None, csrf: str | None) -> bool:
    if not attempt or not csrf or not ATTEMPT.match(attempt) or len(csrf) != 64:
        return False
    return crypto.same(csrf, _token(rt, payment_id, client_secret, attempt))


class FormError(Exception):
    """What the customer typed cannot be used: said next to the method's fields."""

    def __init__(self, method: str, message: str):
        super().__init__(message)
        self.method, self.message = method, message


def _phone(method: str, text: str) -> str:
    if not text.strip():
        raise FormError(method, words.NEED_PHONE)
    if len(text) > 32:
        raise FormError(method, words.BAD_PHONE)
    try:
        return normalise_local(text)
    except InvalidInput:
        raise FormError(method, words.BAD_PHONE) from None


def _card(form) -> Card:
    number = (form.get("card_number") or "").strip()
    expiry = (form.get("card_expiry") or "").strip()
    cvc = (form.get("card_cvc") or "").strip()
    if not number or not expiry or not cvc:
        raise FormError("card", words.NEED_CARD)
    digits = number.replace(" ", "").replace("-", "")
    if not digits.isascii() or not digits.isdigit() or not 12 <= len(digits) <= 19:
        raise FormError("card", words.BAD_CARD_NUMBER)
    found = _EXPIRY.match(expiry)
    if not found or not 1 <= int(found.group(1)) <= 12:
        raise FormError("card", words.BAD_EXPIRY)
    year = int(found.group(2))
    if year < 100:
        year += 2000
    if not cvc.isascii() or not cvc.isdigit() or not 3 <= len(cvc) <= 4:
        raise FormError("card", words.BAD_CVC)
    return Card(number=digits, exp_month=int(found.group(1)), exp_year=year, cvc=cvc)


def read_method(form, p: payments.Payment) -> payments.PaymentMethod:
    """The method the customer chose, with what they typed (FormError if unusable).
    Cards only on a test payment: the page never offers them on a live one."""
    method = form.get("method") or ""
    if method == "card" and not p.livemode:
        return payments.PaymentMethod(type="card", card=_card(form))
    if method in ("soxara_wallet", "mtn_momo", "orange_money"):
        return payments.PaymentMethod(type=method, phone=_phone(method, form.get("phone") or ""))
    raise FormError("", words.CHOOSE_METHOD)


def attempt_fingerprint(m: payments.PaymentMethod) -> dict:
    """What makes two submissions of one attempt the same: never a card's number or
    code (not even hashed), only its last four and expiry."""
    if m.card is not None:
        return {"type": m.type, "last4": m.card.digits[-4:], "exp": [m.card.exp_month, m.card.exp_year]}
    return {"type": m.type, "phone": m.phone}
