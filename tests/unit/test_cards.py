"""The card rail's interface and its sandbox: CONTRACT.md section 2's test cards, exactly."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from core.config import Settings
from core.rails import RailUnavailable, rails_for
from core.rails.cards import Card, SandboxCards

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def card(number: str, exp_month: int = 12, exp_year: int = 2030, cvc: str = "123") -> Card:
    return Card(number=number, exp_month=exp_month, exp_year=exp_year, cvc=cvc)


def charge(number: str, **kw):
    return SandboxCards().charge(reference="pi_test1", card=card(number, **kw), amount=1250,
                                 currency="USD", now=NOW)


@pytest.mark.parametrize("number, status, failure_code", [
    ("4242424242424242", "succeeded", None),
    ("4242 4242 4242 4242", "succeeded", None),
    ("4000000000000002", "failed", "generic_decline"),
    ("4000000000009995", "failed", "insufficient_funds"),
    ("4000000000000069", "failed", "expired_card"),
    ("4000002760003184", "requires_action", None),
])
def test_the_contracts_test_cards(number, status, failure_code):
    r = charge(number)
    assert (r.status, r.failure_code) == (status, failure_code)
    assert (r.brand, r.last4) == ("visa", number[-4:])


def test_needs_action_says_what_action():
    assert charge("4000002760003184").action == "3ds_authentication"


@pytest.mark.parametrize("number, brand", [
    ("5555555555554444", "mastercard"), ("2223003122003222", "mastercard"), ("378282246310005", "amex")])
def test_any_other_well_formed_card_succeeds_and_names_its_brand(number, brand):
    r = charge(number)
    assert (r.status, r.brand, r.last4) == ("succeeded", brand, number[-4:])


@pytest.mark.parametrize("kw, failure_code", [
    ({"number": "4242424242424241"}, "incorrect_number"),   # fails the Luhn check
    ({"number": "4242"}, "incorrect_number"),
    ({"number": "4242424242424242", "exp_year": 2024}, "expired_card"),
    ({"number": "4242424242424242", "exp_month": 13}, "invalid_expiry_month"),
    ({"number": "4242424242424242", "cvc": "12"}, "invalid_cvc"),
])
def test_a_malformed_or_expired_card_is_declined_as_a_real_network_would(kw, failure_code):
    number = kw.pop("number")
    assert (charge(number, **kw).status, charge(number, **kw).failure_code) == ("failed", failure_code)


def test_the_number_never_leaves_the_call_in_what_it_returns_or_logs(caplog):
    number = "4000000000000002"
    with caplog.at_level(logging.DEBUG):
        r = charge(number)
    assert number not in repr(r) and number not in caplog.text
    shown = repr(card(number, cvc="987"))
    assert number not in shown and "987" not in shown and "0002" in shown, "a Card shows its last four"


def test_refunds_succeed_and_status_knows_no_charge_it_never_kept():
    cards = SandboxCards()
    refund = cards.refund(reference="re_1", charge_reference="pi_test1", amount=500, currency="USD")
    assert refund.status == "succeeded"
    assert cards.status(reference="pi_unknown").status == "not_found"


def test_which_card_rail_carries_each_modes_money():
    dev = rails_for(Settings.from_env({}))
    assert isinstance(dev.cards(livemode=False), SandboxCards)
    assert isinstance(dev.cards(livemode=True), SandboxCards), "development: the sandbox carries live too"
    prod = rails_for(Settings.from_env({
        "SOXARA_ENV": "production", "SOXARA_SECRET_KEY": "s" * 40, "SOXARA_TWILIO_AUTH_TOKEN": "t" * 32,
        "SOXARA_TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "SOXARA_DATABASE_URL": "postgresql://x/y",
        "SOXARA_REDIS_URL": "redis://127.0.0.1:1/0"}))
    assert isinstance(prod.cards(livemode=False), SandboxCards), "test mode keeps the sandbox"
    with pytest.raises(RailUnavailable, match="card is not available for live payments"):
        prod.cards(livemode=True)
