"""Cards: the card rail's interface and the sandbox's card network.

A card number and CVC reach the rail and go no further: they are never stored, logged or
put in an exception's text. What comes back, and what we keep, is the brand and the last
four digits (`CardResult`). A `Card` shows only its last four when printed.

The sandbox follows CONTRACT.md section 2's test cards exactly:

| number | answer |
|---|---|
| `4242 4242 4242 4242` | succeeds |
| `4000 0000 0000 0002` | fails `generic_decline` |
| `4000 0000 0000 9995` | fails `insufficient_funds` |
| `4000 0000 0000 0069` | fails `expired_card` |
| `4000 0027 6000 3184` | `requires_action` (`3ds_authentication`) |

Any other well-formed number (13-19 digits passing the Luhn check) succeeds, as a test
card of another brand would; one that is not fails `incorrect_number`, a past expiry
`expired_card`, a month outside 1-12 `invalid_expiry_month`, a CVC that is not 3-4 digits
`invalid_cvc`. The sandbox answers every charge at once and keeps nothing, so `status`
of any reference is `not_found` (a provider that never received the charge: charging
again with the same reference is safe).

A charge answered `requires_action` waits for the customer's 3-D Secure step. The sandbox
has no bank to show it, so the test-mode pay page offers the step's two outcomes
(docs/payments.md, "A card's 3-D Secure in test mode"), and `authenticate` is the
network's answer to each: completed, the charge succeeds; failed, it fails
`authentication_failed` and nothing is taken.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from core.luhn import luhn_ok

TEST_CARDS = {
    "4242424242424242": ("succeeded", None),
    "4000000000000002": ("failed", "generic_decline"),
    "4000000000009995": ("failed", "insufficient_funds"),
    "4000000000000069": ("failed", "expired_card"),
    "4000002760003184": ("requires_action", None),
}
MESSAGES = {
    "generic_decline": "the card was declined",
    "insufficient_funds": "the card has too little money",
    "expired_card": "the card has expired",
    "incorrect_number": "the card number is not valid",
    "invalid_expiry_month": "the card's expiry month is not valid",
    "invalid_cvc": "the card's security code is not valid",
    "authentication_failed": "the card's authentication failed",
}


@dataclass(frozen=True)
class Card:
    """What the customer typed. Handed to the rail, never stored or logged."""

    number: str = field(repr=False)
    exp_month: int
    exp_year: int
    cvc: str = field(repr=False)

    @property
    def digits(self) -> str:
        return "".join(c for c in self.number if c.isdigit())

    def __repr__(self) -> str:
        return f"Card(•••• {self.digits[-4:]}, {self.exp_month:02d}/{self.exp_year})"


@dataclass(frozen=True)
class CardResult:
    """A rail's answer about one charge or refund: all we keep of a card is brand and last4."""

    status: str  # "succeeded" | "failed" | "requires_action" | "pending" | "not_found"
    brand: str | None = None
    last4: str | None = None
    failure_code: str | None = None
    message: str | None = None
    action: str | None = None  # with requires_action: what the customer must do


class CardRail(Protocol):
    """Charge and refund cards. `reference` is always our own id (the payment's, the
    refund's): the provider's idempotency key, so a retry after a time-out never charges
    twice. A real adapter times out quickly and answers "pending" rather than raise when
    the provider does not answer; `status(reference)` asks later."""

    name: str
    sandbox: bool

    def charge(self, *, reference: str, card: Card, amount: int, currency: str,
               now: datetime) -> CardResult: ...

    def status(self, *, reference: str) -> CardResult: ...

    def authenticate(self, *, reference: str, completed: bool) -> CardResult:
        """The customer's 3-D Secure step for the charge `reference`, completed or
        failed: the charge's final answer (`succeeded` or `failed`)."""
        ...

    def refund(self, *, reference: str, charge_reference: str, amount: int,
               currency: str) -> CardResult: ...


def brand_of(digits: str) -> str:
    if digits.startswith("4"):
        return "visa"
    if digits[:2] in ("34", "37"):
        return "amex"
    if "51" <= digits[:2] <= "55" or "2221" <= digits[:4] <= "2720":
        return "mastercard"
    return "unknown"


class SandboxCards:
    """The contract's test cards (module docstring)."""

    name = "card"
    sandbox = True

    def charge(self, *, reference, card, amount, currency, now) -> CardResult:
        digits = card.digits
        if not 13 <= len(digits) <= 19 or not luhn_ok(digits):
            return _failed("incorrect_number")
        shown = {"brand": brand_of(digits), "last4": digits[-4:]}
        if not 1 <= card.exp_month <= 12:
            return _failed("invalid_expiry_month", **shown)
        if (card.exp_year, card.exp_month) < (now.year, now.month):
            return _failed("expired_card", **shown)
        if not (card.cvc.isdigit() and 3 <= len(card.cvc) <= 4):
            return _failed("invalid_cvc", **shown)
        status, failure = TEST_CARDS.get(digits, ("succeeded", None))
        if failure:
            return _failed(failure, **shown)
        return CardResult(status, **shown, action="3ds_authentication" if status == "requires_action" else None)

    def status(self, *, reference) -> CardResult:
        return CardResult("not_found", message="the sandbox keeps no charges: each was answered at once")

    def authenticate(self, *, reference, completed) -> CardResult:
        return CardResult("succeeded") if completed else _failed("authentication_failed")

    def refund(self, *, reference, charge_reference, amount, currency) -> CardResult:
        return CardResult("succeeded")


def _failed(code: str, **shown) -> CardResult:
    return CardResult("failed", failure_code=code, message=MESSAGES[code], **shown)
