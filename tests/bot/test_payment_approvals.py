"""A merchant's wallet payment approved (or not) in WhatsApp, end to end: the HTTP API on
one side, the signed webhook on the other, the ledger checked to the cent."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.flows import registry
from core.db import utcnow
from core.events.events import Event
from core.wallets import ledger, wallets
from tests.bot.conftest import PIN, balance
from tests.conftest import Api, create_merchant
from workers import payments as payment_sweeps

A, B = "+231886300001", "+231886300002"


@pytest.fixture
def shop(client, runtime):
    mid, key = create_merchant(runtime, "Kpelle Crafts")
    http = Api(client, key)
    http.merchant_id = mid
    return http


def ask(shop, phone, amount=1250, description="2 baskets"):
    r = shop.post("/v1/payments", {"amount": amount, "currency": "USD", "description": description,
                                   "customer_phone": phone})
    assert r.status_code == 201, r.get_json()
    pid = r.get_json()["data"]["id"]
    r = shop.post(f"/v1/payments/{pid}/confirm", {"payment_method": {"type": "soxara_wallet"}})
    assert r.status_code == 200, r.get_json()
    d = r.get_json()["data"]
    assert (d["status"], d["next_action"]["type"]) == ("requires_action", "whatsapp_approval")
    return pid


def status(shop, pid):
    d = shop.get(f"/v1/payments/{pid}").get_json()["data"]
    return d["status"], (d["last_payment_error"] or {}).get("code")


def merchant_balance(runtime, shop) -> int:
    with runtime.uow() as uow:
        assert ledger.check(uow) == []
        w = wallets.find_wallet(uow, wallets.MERCHANT, shop.merchant_id, "USD", False)
        return w.balance if w else 0


def events_of(runtime, pid) -> list[str]:
    with runtime.uow() as uow:
        return [e.type for e in uow.session.scalars(select(Event).where(Event.object_id == pid).order_by(Event.id))]


def test_the_customer_approves_in_the_chat_and_the_merchant_refunds_in_two_parts(person, shop, runtime):
    a = person(A, usd=50_00)
    before = len(a.outbox())
    pid = ask(shop, A)
    assert a.outbox()[before:] == ["Pay US$12.50 to Kpelle Crafts for 2 baskets?\n1 YES\n2 NO"]
    assert "Type your PIN to pay US$12.50 to Kpelle Crafts" in a.says("1")
    out = a.says(PIN)
    assert f"Paid US$12.50 to Kpelle Crafts.\nRef {pid}" in out
    assert status(shop, pid) == ("succeeded", None)
    assert events_of(runtime, pid) == ["payment.created", "payment.requires_action", "payment.succeeded"]
    assert balance(runtime, A) == 50_00 - 12_50 and merchant_balance(runtime, shop) == 12_37
    assert "didn't get that" in a.says(PIN), "the PIN again pays nothing twice"
    assert balance(runtime, A) == 50_00 - 12_50

    r = shop.post("/v1/refunds", {"payment": pid, "amount": 500, "reason": "one basket was broken"})
    assert r.status_code == 201 and r.get_json()["data"]["status"] == "succeeded"
    r = shop.post("/v1/refunds", {"payment": pid})
    assert r.status_code == 201 and r.get_json()["data"]["amount"] == 750
    assert balance(runtime, A) == 50_00 and merchant_balance(runtime, shop) == 0
    assert shop.get(f"/v1/payments/{pid}").get_json()["data"]["amount_refunded"] == 12_50


def test_the_customer_declines_and_the_payment_is_payable_again(person, shop, runtime):
    a = person(A, usd=50_00)
    pid = ask(shop, A)
    assert "Declined. Nothing was paid, and Kpelle Crafts was told." in a.says("2")
    assert status(shop, pid) == ("requires_payment_method", "customer_declined")
    assert events_of(runtime, pid)[-1] == "payment.failed"
    assert balance(runtime, A) == 50_00 and merchant_balance(runtime, shop) == 0
    # Payable again: the merchant asks once more, and this time it is paid.
    r = shop.post(f"/v1/payments/{pid}/confirm", {"payment_method": {"type": "soxara_wallet"}})
    assert r.get_json()["data"]["status"] == "requires_action"
    a.says("YES")
    assert "Paid US$12.50" in a.says(PIN)
    assert status(shop, pid) == ("succeeded", None)


def test_too_little_money_leaves_the_payment_payable_with_insufficient_funds(person, shop, runtime):
    a = person(A, usd=5_00)
    pid = ask(shop, A)
    a.says("1")
    out = a.says(PIN)
    assert "Not enough USD to pay that. You have US$5.00. Nothing was paid" in out
    assert status(shop, pid) == ("requires_payment_method", "INSUFFICIENT_FUNDS")
    assert balance(runtime, A) == 5_00 and merchant_balance(runtime, shop) == 0


def test_five_wrong_pins_lock_and_nothing_moves(person, shop, runtime):
    a = person(A, usd=50_00)
    pid = ask(shop, A)
    a.says("1")
    wrong = "9" + PIN[1:] if PIN[0] != "9" else "1" + PIN[1:]
    outs = []
    for _ in range(5):  # the existing lockout: typed wrong until it locks
        outs.append(a.says(wrong))
        if "locked" in outs[-1]:
            break
    assert "Wrong PIN" in outs[0] and "Your PIN is locked" in outs[-1], outs
    a.says("PAY")
    a.says("1")
    assert "locked" in a.says(PIN), "even the right PIN waits out the lock"
    assert status(shop, pid) == ("requires_action", None)
    assert balance(runtime, A) == 50_00 and merchant_balance(runtime, shop) == 0


def test_an_unanswered_request_expires_and_a_late_yes_pays_nothing(person, shop, runtime):
    a = person(A, usd=50_00)
    pid = ask(shop, A)
    payment_sweeps.advance_due(runtime, utcnow() + timedelta(minutes=14))
    assert status(shop, pid) == ("requires_action", None)
    payment_sweeps.advance_due(runtime, utcnow() + timedelta(minutes=16))
    assert status(shop, pid) == ("requires_payment_method", "approval_expired")
    a.says("1")
    assert "no longer waiting" in a.says(PIN)
    assert balance(runtime, A) == 50_00 and merchant_balance(runtime, shop) == 0


def test_a_phone_not_logged_in_is_told_and_answers_from_the_menu(phone, shop, runtime):
    from tests.bot.conftest import fund

    fund(runtime, B, 20_00)
    b = phone(B)
    pid = ask(shop, B)
    assert b.outbox() == ["Kpelle Crafts asks you to pay US$12.50 for 2 baskets from your Soxara wallet. "
                          "Reply HI to log in, then choose Payment requests to answer it."]
    b.login()
    number = str(registry.menu_number("approvals"))
    assert f"{number} Payment requests" in b.says("MENU")
    assert "Pay US$12.50 to Kpelle Crafts for 2 baskets?" in b.says(number)
    b.says("YES")
    assert "Paid US$12.50" in b.says(PIN)
    assert status(shop, pid) == ("succeeded", None) and balance(runtime, B) == 20_00 - 12_50


def test_cancel_leaves_the_request_waiting_and_several_are_listed(person, shop, runtime):
    a = person(A, usd=50_00)
    first = ask(shop, A)
    assert "Not paid yet. You can still answer it for up to 15 minutes" in a.says("CANCEL")
    second = ask(shop, A, amount=300, description="a mat")
    a.says("CANCEL")
    out = a.says("PAY")
    assert "1 US$12.50 to Kpelle Crafts\n2 US$3.00 to Kpelle Crafts" in out
    assert "Pay US$3.00 to Kpelle Crafts for a mat?" in a.says("2")
    a.says("1")
    assert "Paid US$3.00" in a.says(PIN)
    assert status(shop, second) == ("succeeded", None) and status(shop, first) == ("requires_action", None)
    r = shop.post(f"/v1/payments/{first}/cancel")
    assert r.status_code == 200 and r.get_json()["data"]["status"] == "canceled"
    assert "No payment requests are waiting for you." in a.says("PAY")
    assert balance(runtime, A) == 50_00 - 3_00 and merchant_balance(runtime, shop) == 3_00 - 3


def test_a_description_is_shown_as_one_clean_line(person, shop, runtime):
    a = person(A, usd=50_00)
    before = len(a.outbox())
    ask(shop, A, description="2 baskets\n\u202eSEND ALL\u202c")
    shown = a.outbox()[before:][0]
    assert shown.startswith("Pay US$12.50 to Kpelle Crafts for 2 baskets SEND ALL?") and "\u202e" not in shown


def test_an_approval_whose_job_was_lost_is_asked_by_the_sweep(person, shop, runtime):
    """Redis down when the payment was confirmed: the enqueue failed after the commit; the
    payment's due time brings it to the sweep, which asks in the chat once."""
    from tests.conftest import RefusingJobs

    a = person(A, usd=50_00)
    jobs, runtime.jobs = runtime.jobs, RefusingJobs()
    try:
        pid = ask(shop, A)
    finally:
        runtime.jobs = jobs
    before = len(a.outbox())
    assert payment_sweeps.advance_due(runtime) == 1
    assert a.outbox()[before:] == ["Pay US$12.50 to Kpelle Crafts for 2 baskets?\n1 YES\n2 NO"]
    payment_sweeps.advance_due(runtime, utcnow() + timedelta(minutes=5))
    assert len(a.outbox()) == before + 1, "asked once"
    a.says("1")
    assert "Paid US$12.50" in a.says(PIN) and status(shop, pid) == ("succeeded", None)
