"""The pay page's Soxara wallet method end to end: the page starts the approval, the
customer answers in WhatsApp through the signed webhook, and the page (reloaded, as its
meta refresh does) shows the outcome. The ledger is checked to the cent."""

from __future__ import annotations

import pytest

from tests.api.test_pay_page import (  # noqa: F401 - shop: the fixture, shared
    PayPage,
    events_of,
    merchant_balance,
    new_payment,
    refresh_of,
    shop,
    status,
    sweep,
)
from tests.bot.conftest import PIN, balance

A = "+231886300011"


@pytest.fixture
def pay_page(client, shop):  # noqa: F811
    d = new_payment(shop)
    return PayPage(client, d["id"], d["client_secret"])


def test_the_page_says_check_whatsapp_and_shows_paid_once_approved_with_the_pin(person, pay_page, runtime, shop):  # noqa: F811
    a = person(A, usd=50_00)
    before = len(a.outbox())
    r = pay_page.pay("soxara_wallet", phone="0886300011")
    assert "Check WhatsApp" in pay_page.text() and "We sent a payment request to 0886300011" in pay_page.text()
    assert refresh_of(r) == 3
    assert a.outbox()[before:] == ["Pay US$12.50 to Kpelle Crafts for 2 baskets?\n1 YES\n2 NO"]
    a.says("1")
    assert "Paid US$12.50 to Kpelle Crafts" in a.says(PIN)
    r = pay_page.open()
    assert "Paid" in pay_page.text() and refresh_of(r) is None
    assert balance(runtime, A) == 50_00 - 12_50 and merchant_balance(runtime, shop) == 12_50 - 13
    assert events_of(runtime, pay_page.id) == ["payment.created", "payment.requires_action", "payment.succeeded"]


def test_declined_in_the_chat_the_page_says_so_and_offers_the_ways_to_pay_again(person, pay_page, runtime, shop):  # noqa: F811
    a = person(A, usd=50_00)
    pay_page.pay("soxara_wallet", phone=A)
    a.says("2")
    pay_page.open()
    text = pay_page.text()
    assert "You declined the request in WhatsApp." in text and "Nothing was taken." in text and "Pay with" in text
    assert status(runtime, pay_page.id) == ("requires_payment_method", "customer_declined")
    pay_page.pay("mtn_momo", phone="0881111000")  # another way, from the same page
    assert "Paid" in pay_page.text() and balance(runtime, A) == 50_00
    assert merchant_balance(runtime, shop) == 12_50 - 31


def test_an_unanswered_request_expires_and_the_page_says_so(person, pay_page, runtime):
    person(A, usd=50_00)
    pay_page.pay("soxara_wallet", phone=A)
    sweep(runtime, after_seconds=16 * 60)
    pay_page.open()
    assert "Payment request expired" in pay_page.text() and "not answered in time" in pay_page.text()
    assert "Pay with" in pay_page.text() and balance(runtime, A) == 50_00


def test_a_phone_not_logged_in_in_the_chat_is_told_how_to_answer(phone, pay_page, runtime):
    b = phone("+231886300012")
    pay_page.pay("soxara_wallet", phone="0886300012")
    assert "Check WhatsApp" in pay_page.text()
    assert "Kpelle Crafts asks you to pay US$12.50 for 2 baskets from your Soxara wallet" in b.outbox()[-1]
