"""Paying a bill in the chat, end to end through the signed Twilio webhook: the menu, the
biller, the account number (its example shown, the last ones offered), the amount, the
confirmation and the PIN, the receipt, and the token in a message of its own when the
worker hears from TIMM. Bad input is answered plainly and moves nothing. The ledger is
checked after each."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core.bills import bill_payments
from core.db import utcnow
from core.wallets import ledger
from tests.api.test_bill_payments import counting
from tests.bot.conftest import PIN, balance
from workers import bills as bill_jobs

A = "+231886100041"
METER = "04123456789"


def settle_later(runtime) -> int:
    return bill_jobs.settle_due(runtime, utcnow() + timedelta(seconds=6))


def ledger_holds(runtime) -> None:
    with runtime.uow() as uow:
        assert ledger.check(uow) == []


def payments(runtime) -> int:
    with runtime.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(bill_payments.BillPayment))


@pytest.fixture
def timm(runtime):
    return counting(runtime)


def test_pay_lec_from_the_menu_and_get_the_token(person, runtime, timm):
    a = person(A, "Musu", usd=50_00)
    assert "7 Help\n8 Pay a bill" in a.says("MENU")
    out = a.says("8")
    assert "Which bill do you want to pay?\n1 LEC electricity\n2 LWSC water" in out
    out = a.says("1")
    assert "Type your LEC meter number. It looks like 04123456789." in out
    out = a.says("0412 345 6789")  # copied off the meter with spaces
    assert "How much do you want to pay?" in out
    out = a.says("20 USD")
    assert "Pay US$20.00 to LEC for meter number 04123456789?\n1 YES\n2 NO" in out
    assert "Type your PIN to pay US$20.00 to LEC for 04123456789" in a.says("1")
    receipt = a.says(PIN)
    assert "Paying US$20.00 to LEC for 04123456789." in receipt
    assert "We'll send your token in its own message" in receipt
    bp_id = re.search(r"Ref (bp_\w+)", receipt).group(1)
    assert timm.pays == [bp_id] and balance(runtime, A) == 30_00

    before = len(a.outbox())
    assert settle_later(runtime) == 1
    news = a.outbox()[before:]
    assert len(news) == 2, news
    assert "Your LEC payment went through: US$20.00 (57.1 kWh) for meter 04123456789" in news[0]
    assert f"Ref {bp_id}" in news[0] and "next message" in news[0]
    assert re.fullmatch(r"\d{4} \d{4} \d{4} \d{4} \d{4}", news[1]), "the token alone, in groups of four"
    with runtime.uow() as uow:
        assert bill_payments.format_token(uow.session.get(bill_payments.BillPayment, bp_id).token) == news[1]
    assert "LEC bill" in a.says("4"), "the history names it"
    ledger_holds(runtime)


def test_the_last_account_numbers_are_offered(person, runtime):
    a = person(A, usd=50_00)
    for meter in (METER, "04199999999"):
        a.says("BILL")
        a.says("LEC")
        a.says(meter)
        a.says("1 USD")
        a.says("YES")
        assert "Paying US$1.00" in a.says(PIN)
    a.says("BILL")
    out = a.says("1")
    assert "Which LEC meter number?\n1 04199999999\n2 04123456789\nor type another one" in out
    assert "Pay US$2.00 to LEC for meter number 04123456789?" in (a.says("2"), a.says("2 usd"))[1]
    a.says("NO")
    a.says("BILL")
    out = a.says("2")
    assert "Type your LWSC account number. It looks like 20012345." in out, "none paid to LWSC yet"
    ledger_holds(runtime)


def test_a_water_bill_is_confirmed_without_a_token(person, runtime):
    a = person(A, lrd=5_000_00)
    a.says("BILL")
    a.says("water")
    a.says("20012345")
    a.says("L$1,500")
    assert "Pay L$1,500.00 to LWSC for account number 20012345?" in a.outbox()[-1]
    a.says("1")
    receipt = a.says(PIN)
    assert "We'll message you when LWSC confirms." in receipt
    settle_later(runtime)
    assert "Your LWSC bill is paid: L$1,500.00 for account 20012345." in a.outbox()[-1]
    assert balance(runtime, A, "LRD") == 3_500_00
    ledger_holds(runtime)


def test_a_rejected_account_gets_its_money_back(person, runtime):
    a = person(A, usd=50_00)
    a.says("BILL")
    a.says("1")
    a.says("04100000001")
    a.says("20 usd")
    a.says("1")
    receipt = a.says(PIN)
    assert "Paying US$20.00" in receipt
    last = a.outbox()[-1]
    assert "did not go through: the biller has no such account" in last and "back in your wallet" in last
    assert balance(runtime, A) == 50_00
    assert "money back" in a.says("4")
    ledger_holds(runtime)


# --- bad input: said plainly, nothing moved ---------------------------------------------

def test_an_unknown_biller_is_asked_again(person, runtime):
    a = person(A, usd=50_00)
    a.says("BILL")
    for answer in ("NAWASCO", "3", "0"):
        out = a.says(answer)
        assert "Reply with the bill's number or its name (LEC, LWSC)." in out and "CANCEL" in out
    assert "Type your LEC meter number" in a.says("lec")
    assert payments(runtime) == 0


@pytest.mark.parametrize("wrong", ["4123456789", "041234567890", "0412345678X", "meter 1"])
def test_an_account_number_of_the_wrong_shape_is_asked_again_with_the_example(person, runtime, wrong):
    a = person(A, usd=50_00)
    a.says("BILL")
    a.says("1")
    out = a.says(wrong)
    assert "That isn't a LEC meter number. It looks like 04123456789." in out
    assert "How much" not in out
    assert "How much do you want to pay?" in a.says(METER)
    assert payments(runtime) == 0 and balance(runtime, A) == 50_00


def test_a_bill_larger_than_the_balance_is_refused_before_the_pin(person, runtime, timm):
    a = person(A, usd=10_00)
    a.says("BILL")
    a.says("1")
    a.says(METER)
    out = a.says("20 USD")
    assert "Not enough USD for that. You have US$10.00. Nothing was paid." in out
    assert "How much do you want to pay?" in out and "PIN" not in out
    out = a.says("500 LRD")
    assert "Not enough LRD for that. You have L$0.00. Nothing was paid." in out
    assert payments(runtime) == 0 and timm.pays == [] and balance(runtime, A) == 10_00
    ledger_holds(runtime)


def test_money_spent_meanwhile_is_refused_at_the_pin(person, runtime, timm):
    from tests.bot.conftest import fund

    a = person(A, usd=30_00)
    a.says("BILL")
    a.says("1")
    a.says(METER)
    a.says("20 USD")
    a.says("1")
    fund(runtime, A, -15_00)  # spent elsewhere while the PIN was being typed
    out = a.says(PIN)
    assert "Not enough USD for that. You have US$15.00. Nothing was paid." in out
    assert payments(runtime) == 0 and timm.pays == [] and balance(runtime, A) == 15_00
    ledger_holds(runtime)


def test_cancel_and_no_pay_nothing(person, runtime):
    a = person(A, usd=50_00)
    a.says("BILL")
    a.says("1")
    assert "Cancelled. Nothing was paid." in a.says("CANCEL")
    a.says("BILL")
    a.says("1")
    a.says(METER)
    a.says("5 usd")
    assert "Cancelled. Nothing was paid." in a.says("NO")
    assert payments(runtime) == 0 and balance(runtime, A) == 50_00


def test_the_pin_is_not_kept_in_the_transcript_and_the_account_is(person, runtime):
    from core.messaging import conversations

    a = person(A, usd=50_00)
    a.says("BILL")
    a.says("1")
    a.says(METER)
    a.says("5 usd")
    a.says("1")
    a.says(PIN)
    with runtime.uow() as uow:
        said = [line.body for line in conversations.transcript(uow, A, limit=100)]
    assert METER in said and PIN not in said
