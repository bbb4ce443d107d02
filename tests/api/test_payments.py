"""Payments and refunds through the HTTP API: the statuses, the fees, the sandbox tables
(MoMo, Orange, cards) row by row, the bad input, and the ledger to the cent after each."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from core.db import utcnow
from core.events.events import Event
from core.identity import users
from core.payments import payments as payments_core
from core.wallets import ledger, sandbox, wallets
from tests.conftest import Api, create_merchant, signed_in
from workers import payments as payment_sweeps

BUYER = "+231886200001"
MERCHANT_NAME = "Kpelle Crafts"


@pytest.fixture
def shop(runtime):
    mid, key = create_merchant(runtime, MERCHANT_NAME)
    return mid, key


@pytest.fixture
def api(client, shop):
    return Api(client, shop[1])


def buyer(runtime, phone=BUYER, amount=sandbox.BUYER_FUNDS):
    with runtime.uow() as uow:
        u, _ = sandbox.make_buyer(uow, phone, amount=amount)
        uow.commit()
    return u.id


def balances(runtime, merchant_id, *, currency="USD", livemode=False) -> dict:
    """Merchant, fees, and every user's wallet, with the ledger check run."""
    with runtime.uow() as uow:
        assert ledger.check(uow) == []
        out = {"merchant": wallets.wallet_for(uow, wallets.MERCHANT, merchant_id, currency, livemode).balance,
               "fees": wallets.system_account(uow, "fees", currency, livemode).balance,
               "refunds_pending": wallets.system_account(uow, "refunds_pending", currency, livemode).balance}
        uow.commit()
        return out


def user_balance(runtime, user_id, currency="USD", livemode=False) -> int:
    with runtime.uow() as uow:
        w = wallets.find_wallet(uow, wallets.USER, user_id, currency, livemode)
        return w.balance if w else 0


def event_types(runtime, object_id) -> list[str]:
    with runtime.uow() as uow:
        return [e.type for e in uow.session.scalars(select(Event).where(Event.object_id == object_id)
                                                   .order_by(Event.id))]


def create(api, **body):
    r = api.post("/v1/payments", {"amount": 1250, "currency": "USD", "description": "2 baskets", **body})
    assert r.status_code == 201, r.get_json()
    return r.get_json()["data"]


def confirm(api, pid, method, idem=None, **extra):
    return api.post(f"/v1/payments/{pid}/confirm", {"payment_method": method, **extra}, idem=idem)


def get(api, pid):
    r = api.get(f"/v1/payments/{pid}")
    assert r.status_code == 200, r.get_json()
    return r.get_json()["data"]


def refund(api, pid, amount=None, idem=None):
    body = {"payment": pid, **({"amount": amount} if amount is not None else {})}
    return api.post("/v1/refunds", body, idem=idem)


# --- create, read, list -------------------------------------------------------------------------


def test_a_payment_is_created_payable_with_its_client_secret_shown_once(api, runtime):
    p = create(api, customer_phone=BUYER, metadata={"order": "A-17"})
    assert p["status"] == "requires_payment_method" and p["id"].startswith("pi_")
    assert p["client_secret"].startswith(p["id"] + "_secret_")
    assert (p["fee"], p["net"], p["amount_refunded"], p["metadata"]) == (None, None, 0, {"order": "A-17"})
    again = get(api, p["id"])
    assert "client_secret" not in again and again["status"] == "requires_payment_method"
    assert event_types(runtime, p["id"]) == ["payment.created"]
    with runtime.uow() as uow:  # only the keyed hash is kept
        row = uow.session.get(payments_core.Payment, p["id"])
        assert p["client_secret"] not in json.dumps(payments_core.snapshot(row)) + row.client_secret_hash


def test_payments_are_listed_newest_first_with_filters_and_keyset_pages(api, runtime):
    buyer(runtime)
    made = [create(api, **({"customer_phone": BUYER} if i % 2 else {})) for i in range(5)]
    assert confirm(api, made[0]["id"], {"type": "soxara_wallet", "phone_number": BUYER}).status_code == 200
    first = api.get("/v1/payments", limit=2).get_json()["data"]
    assert [x["id"] for x in first["items"]] == [made[4]["id"], made[3]["id"]] and first["has_more"]
    second = api.get("/v1/payments", limit=2, cursor=first["next_cursor"]).get_json()["data"]
    assert [x["id"] for x in second["items"]] == [made[2]["id"], made[1]["id"]]
    ok = api.get("/v1/payments", status="succeeded").get_json()["data"]["items"]
    assert [x["id"] for x in ok] == [made[0]["id"]]
    mine = api.get("/v1/payments", customer=BUYER).get_json()["data"]["items"]
    assert [x["id"] for x in mine] == [made[3]["id"], made[1]["id"]]
    later = (utcnow() + timedelta(minutes=1)).isoformat()
    assert api.get("/v1/payments", created_gte=later).get_json()["data"]["items"] == []
    assert len(api.get("/v1/payments", created_lte=later).get_json()["data"]["items"]) == 5
    assert api.get("/v1/payments", status="paid").status_code == 422


def test_another_merchant_and_the_other_mode_see_404(api, client, runtime, shop):
    p = create(api)
    _, other = create_merchant(runtime, "Other")
    _, live = create_merchant(runtime, "Live", live=True)
    for key in (other, live):
        assert Api(client, key).get(f"/v1/payments/{p['id']}").status_code == 404
        r = Api(client, key).post(f"/v1/payments/{p['id']}/cancel")
        assert r.status_code == 404


# --- the wallet: a sandbox buyer pays at once -----------------------------------------------------


def test_a_sandbox_buyer_pays_at_once_and_the_fee_goes_to_the_fees_account(api, runtime, shop):
    uid = buyer(runtime)
    p = create(api)
    r = confirm(api, p["id"], {"type": "soxara_wallet", "phone_number": BUYER})
    assert r.status_code == 200, r.get_json()
    d = r.get_json()["data"]
    # 1% on the wallet by default: 12.50 -> 0.13 (half up), net 12.37.
    assert (d["status"], d["fee"], d["net"]) == ("succeeded", 13, 1237)
    assert d["payment_method"] == {"type": "soxara_wallet", "phone_number": BUYER, "card": None}
    assert balances(runtime, shop[0])["merchant"] == 1237 and balances(runtime, shop[0])["fees"] == 13
    assert user_balance(runtime, uid) == 1000_00 - 1250
    assert event_types(runtime, p["id"]) == ["payment.created", "payment.succeeded"]


def test_fees_come_from_the_settings(client, runtime):
    from api.app import create_app

    runtime.settings = runtime.settings.with_overrides(payment_fees='{"soxara_wallet": 250}')
    http = Api(create_app(runtime=runtime).test_client(), create_merchant(runtime)[1])
    buyer(runtime)
    p = create(http, amount=1000)
    d = confirm(http, p["id"], {"type": "soxara_wallet", "phone_number": BUYER}).get_json()["data"]
    assert (d["fee"], d["net"]) == (25, 975)


def test_too_little_money_is_insufficient_funds_and_the_payment_stays_payable(api, runtime, shop):
    uid = buyer(runtime, amount=1000)
    p = create(api)
    r = confirm(api, p["id"], {"type": "soxara_wallet", "phone_number": BUYER}, idem="short-1")
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "INSUFFICIENT_FUNDS"
    again = confirm(api, p["id"], {"type": "soxara_wallet", "phone_number": BUYER}, idem="short-1")
    assert again.headers.get("Idempotent-Replayed") == "true" and again.status_code == 422
    assert get(api, p["id"])["status"] == "requires_payment_method"
    assert user_balance(runtime, uid) == 1000 and balances(runtime, shop[0])["merchant"] == 0
    assert event_types(runtime, p["id"]) == ["payment.created"]


def test_a_person_confirms_their_own_payment_with_the_client_secret_and_a_step_up(api, client, runtime, shop):
    uid = buyer(runtime, "+231886200077")
    with runtime.uow() as uow:
        # A person who is no sandbox buyer, holding test money as people do on a sandbox deployment.
        u = users.get_or_create(uow, "+231886200078")
        uow.commit()
    from tests.bot.conftest import fund

    fund(runtime, "+231886200078", 50_00)
    token, step = signed_in(runtime, u.id)
    p = create(api)
    person = Api(client, token)
    body = {"payment_method": {"type": "soxara_wallet"}, "client_secret": p["client_secret"]}
    assert person.post(f"/v1/payments/{p['id']}/confirm", body).get_json()["error"]["code"] == "STEP_UP_REQUIRED"
    wrong = {**body, "client_secret": p["client_secret"][:-1] + "x"}
    r = person.post(f"/v1/payments/{p['id']}/confirm", wrong, headers={"X-Step-Up-Token": step})
    assert r.status_code == 404
    r = person.post(f"/v1/payments/{p['id']}/confirm", body, headers={"X-Step-Up-Token": step})
    assert r.status_code == 200 and r.get_json()["data"]["status"] == "succeeded", r.get_json()
    assert user_balance(runtime, u.id) == 50_00 - 1250 and user_balance(runtime, uid) == 1000_00
    assert balances(runtime, shop[0])["merchant"] == 1237


# --- states: confirm twice, cancel -----------------------------------------------------------------


def test_confirming_twice_confirming_a_canceled_and_cancelling_a_succeeded_are_invalid_state(api, runtime, shop):
    buyer(runtime)
    wallet = {"type": "soxara_wallet", "phone_number": BUYER}
    p = create(api)
    assert confirm(api, p["id"], wallet).status_code == 200
    r = confirm(api, p["id"], wallet)
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "INVALID_STATE"
    r = api.post(f"/v1/payments/{p['id']}/cancel")
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "INVALID_STATE"
    q = create(api)
    r = api.post(f"/v1/payments/{q['id']}/cancel")
    assert r.status_code == 200 and r.get_json()["data"]["status"] == "canceled"
    r = confirm(api, q["id"], wallet)
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "INVALID_STATE"
    assert event_types(runtime, q["id"]) == ["payment.created", "payment.canceled"]
    assert balances(runtime, shop[0])["merchant"] == 1237, "only the first confirmation moved money"


def test_a_wrong_client_secret_from_a_key_is_422_and_nothing_moves(api, runtime, shop):
    buyer(runtime)
    p = create(api)
    r = confirm(api, p["id"], {"type": "soxara_wallet", "phone_number": BUYER}, client_secret="pi_x_secret_nope")
    assert r.status_code == 422 and r.get_json()["error"]["details"] == {"field": "client_secret"}
    r = confirm(api, p["id"], {"type": "soxara_wallet", "phone_number": BUYER}, client_secret=p["client_secret"])
    assert r.status_code == 200
    assert balances(runtime, shop[0])["merchant"] == 1237


@pytest.mark.parametrize("body,code", [
    ({"amount": 0, "currency": "USD"}, "AMOUNT_TOO_SMALL"),
    ({"amount": 12.5, "currency": "USD"}, "VALIDATION_ERROR"),
    ({"amount": 100, "currency": "EUR"}, "INVALID_CURRENCY"),
    ({"amount": 100, "currency": "USD", "customer_phone": "0881"}, "INVALID_PHONE_NUMBER"),
    ({"amount": 100, "currency": "USD", "customer_phone": "+231770000000"}, "VALIDATION_ERROR"),
    ({"amount": 100, "currency": "USD", "metadata": {"k": 1}}, "VALIDATION_ERROR"),
])
def test_bad_payments_are_refused_and_nothing_is_written(api, runtime, body, code):
    r = api.post("/v1/payments", body)
    assert r.status_code == 422 and r.get_json()["error"]["code"] == code, r.get_json()
    with runtime.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(payments_core.Payment)) == 0


@pytest.mark.parametrize("method,field", [
    ({"type": "card", "phone_number": BUYER}, "payment_method"),
    ({"type": "paypal"}, "payment_method"),
    ({"type": "soxara_wallet"}, "payment_method.phone_number"),
    ({"type": "mtn_momo"}, "payment_method.phone_number"),
    ({"type": "soxara_wallet", "phone_number": "+231770000000"}, "payment_method.phone_number"),
])
def test_bad_methods_are_422_and_the_payment_stays_payable(api, runtime, method, field):
    p = create(api)
    r = confirm(api, p["id"], method)
    assert r.status_code == 422 and r.get_json()["error"]["details"]["field"] == field, r.get_json()
    assert get(api, p["id"])["status"] == "requires_payment_method"


def test_test_things_on_a_live_key_and_live_things_on_a_test_key_are_refused(client, runtime):
    buyer(runtime)
    mid, live = create_merchant(runtime, "Live Shop", live=True)
    http = Api(client, live)
    cases = [({"type": "soxara_wallet", "phone_number": BUYER}, "sandbox buyer"),
             ({"type": "mtn_momo", "phone_number": "+231881111000"}, "sandbox test number"),
             ({"type": "orange_money", "phone_number": "+231771111000"}, "sandbox test number"),
             ({"type": "card", "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2099,
                                        "cvc": "123"}}, "test mode only"),
             # On a sandbox deployment people hold test money: a live key cannot take it.
             ({"type": "soxara_wallet", "phone_number": "+231886200099"}, "test money")]
    for method, words in cases:
        p = create(http)
        r = confirm(http, p["id"], method)
        assert r.status_code == 422 and words in r.get_json()["error"]["message"], (method, r.get_json())
        assert get(http, p["id"])["status"] == "requires_payment_method"
    # The reverse: in production people hold live money, which a test key never takes.
    runtime.settings = runtime.settings.with_overrides(env="production")
    try:
        with runtime.uow() as uow:
            p, _ = payments_core.create(uow, runtime, merchant_id=mid, livemode=False, amount=100, currency="USD")
            uow.commit()
        with runtime.uow() as uow, pytest.raises(Exception) as refused:
            payments_core.confirm(uow, runtime, payments_core.locked(uow, p.id),
                                  payments_core.PaymentMethod("soxara_wallet", "+231886200099"))
        assert "only from sandbox buyers" in str(refused.value)
    finally:
        runtime.settings = runtime.settings.with_overrides(env="development")
    assert balances(runtime, mid, livemode=True)["merchant"] == 0


# --- refunds ----------------------------------------------------------------------------------------


def test_a_wallet_payment_is_refunded_partly_then_wholly_and_the_fee_comes_back(api, runtime, shop):
    uid = buyer(runtime)
    p = create(api, amount=1000)
    assert confirm(api, p["id"], {"type": "soxara_wallet", "phone_number": BUYER}).status_code == 200
    assert balances(runtime, shop[0]) == {"merchant": 990, "fees": 10, "refunds_pending": 0}
    r = refund(api, p["id"], 300)
    assert r.status_code == 201, r.get_json()
    re1 = r.get_json()["data"]
    assert (re1["status"], re1["amount"], re1["payment"]) == ("succeeded", 300, p["id"])
    assert get(api, p["id"])["amount_refunded"] == 300
    assert balances(runtime, shop[0]) == {"merchant": 990 - 297, "fees": 7, "refunds_pending": 0}
    r = refund(api, p["id"], 701)
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "REFUND_EXCEEDS_PAYMENT"
    r = refund(api, p["id"])  # the rest
    assert r.status_code == 201 and r.get_json()["data"]["amount"] == 700
    assert balances(runtime, shop[0]) == {"merchant": 0, "fees": 0, "refunds_pending": 0}
    assert user_balance(runtime, uid) == 1000_00
    r = refund(api, p["id"], 1)
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "REFUND_EXCEEDS_PAYMENT"
    assert get(api, p["id"])["amount_refunded"] == 1000
    listed = api.get(f"/v1/payments/{p['id']}/refunds").get_json()["data"]["items"]
    assert [x["amount"] for x in listed] == [700, 300]
    assert api.get(f"/v1/refunds/{re1['id']}").get_json()["data"]["status"] == "succeeded"
    assert event_types(runtime, re1["id"]) == ["refund.created", "refund.succeeded"]


def test_refunding_a_payment_that_did_not_succeed_is_invalid_state(api, runtime):
    p = create(api)
    r = refund(api, p["id"])
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "INVALID_STATE"
    q = create(api)
    confirm(api, q["id"], {"type": "mtn_momo", "phone_number": "+231881111001"})  # fails at once
    assert get(api, q["id"])["status"] == "failed"
    r = refund(api, q["id"])
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "INVALID_STATE"
    assert refund(api, "pi_nosuchpayment").status_code == 404


# --- mobile money: the contract's table, row by row -------------------------------------------------


def sweep(runtime, after_seconds: float) -> None:
    payment_sweeps.advance_due(runtime, utcnow() + timedelta(seconds=after_seconds))
    payment_sweeps.advance_refunds_due(runtime, utcnow() + timedelta(seconds=after_seconds))


@pytest.mark.parametrize("method,prefix", [("mtn_momo", "+231881111"), ("orange_money", "+231771111")])
@pytest.mark.parametrize("row,waits,status,code", [
    ("000", 0, "succeeded", None),
    ("001", 0, "failed", "user_rejected"),
    ("002", 61, "failed", "timeout"),
    ("003", 0, "failed", "INSUFFICIENT_FUNDS"),
])
def test_the_mobile_money_table(api, runtime, shop, method, prefix, row, waits, status, code):
    p = create(api)
    r = confirm(api, p["id"], {"type": method, "phone_number": prefix + row})
    assert r.status_code == 200 and r.get_json()["data"]["status"] == "requires_action"
    assert r.get_json()["data"]["next_action"]["type"] == "mobile_money_approval"
    if waits:
        sweep(runtime, 30)
        assert get(api, p["id"])["status"] == "requires_action", "still waiting for the rail"
        sweep(runtime, waits)
    d = get(api, p["id"])
    assert (d["status"], (d["last_payment_error"] or {}).get("code")) == (status, code)
    fee = round(1250 * 0.025)
    assert balances(runtime, shop[0])["merchant"] == (1250 - fee if status == "succeeded" else 0)
    assert event_types(runtime, p["id"]) == ["payment.created", "payment.requires_action", f"payment.{status}"]


@pytest.mark.parametrize("method", ["mtn_momo", "orange_money"])
def test_any_other_number_succeeds_after_five_seconds_and_settles_once(api, runtime, shop, method):
    p = create(api)
    confirm(api, p["id"], {"type": method, "phone_number": "+231886543210"})
    sweep(runtime, 2)
    assert get(api, p["id"])["status"] == "requires_action"
    r = api.post(f"/v1/payments/{p['id']}/cancel")  # the rail may still collect: not cancelable
    assert r.status_code == 409
    sweep(runtime, 6)
    assert get(api, p["id"])["status"] == "succeeded"
    sweep(runtime, 60)
    assert balances(runtime, shop[0])["merchant"] == 1250 - 31


def test_a_mobile_money_refund_goes_back_over_the_rail_and_a_failed_one_comes_back(api, runtime, shop):
    p = create(api, amount=2000)
    confirm(api, p["id"], {"type": "mtn_momo", "phone_number": "+231881111004"})  # pays after 5 s
    sweep(runtime, 6)
    assert get(api, p["id"])["status"] == "succeeded"
    assert balances(runtime, shop[0])["merchant"] == 1950
    r = refund(api, p["id"], 1000)
    assert r.status_code == 201
    re = r.get_json()["data"]
    # Eager jobs: the rail was asked right after the commit; …004 cannot receive.
    got = api.get(f"/v1/refunds/{re['id']}").get_json()["data"]
    assert (got["status"], got["failure_code"]) == ("failed", "account_closed")
    assert balances(runtime, shop[0]) == {"merchant": 1950, "fees": 50, "refunds_pending": 0}
    assert get(api, p["id"])["amount_refunded"] == 0
    assert event_types(runtime, re["id"]) == ["refund.created", "refund.failed"]

    q = create(api, amount=2000)
    confirm(api, q["id"], {"type": "orange_money", "phone_number": "+231771111000"})
    r = refund(api, q["id"], 500)
    got = api.get(f"/v1/refunds/{r.get_json()['data']['id']}").get_json()["data"]
    assert got["status"] == "succeeded" and get(api, q["id"])["amount_refunded"] == 500
    assert balances(runtime, shop[0])["refunds_pending"] == 0


# --- cards: the contract's test cards -------------------------------------------------------------


def card(number, exp_year=2099):
    return {"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": exp_year, "cvc": "123"}}


@pytest.mark.parametrize("number,status,code,next_action", [
    ("4242424242424242", "succeeded", None, None),
    ("4000000000000002", "failed", "generic_decline", None),
    ("4000000000009995", "failed", "insufficient_funds", None),
    ("4000000000000069", "failed", "expired_card", None),
    ("4000002760003184", "requires_action", None, "3ds_authentication"),
])
def test_the_test_cards(api, runtime, shop, caplog, number, status, code, next_action):
    caplog.set_level(logging.DEBUG)
    p = create(api)
    r = confirm(api, p["id"], card(number))
    assert r.status_code == 200 and r.get_json()["data"]["status"] == "processing"
    d = get(api, p["id"])  # charged right after the commit
    assert d["status"] == status and (d["last_payment_error"] or {}).get("code") == code
    assert (d["next_action"] or {}).get("type") == next_action
    assert d["payment_method"]["card"] == {"brand": "visa", "last4": number[-4:]}
    assert balances(runtime, shop[0])["merchant"] == (1250 - 49 if status == "succeeded" else 0)
    with runtime.uow() as uow:  # the number is nowhere: not in the rows, the events or the logs
        dump = " ".join(str(tuple(row)) for table in ("payments", "events", "journal_entries")
                        for row in uow.session.execute(text(f"SELECT * FROM {table}")).all())
    assert number not in caplog.text and number not in dump and number[-4:] in dump


def test_a_card_whose_authentication_is_never_completed_fails_when_the_window_ends(api, runtime):
    p = create(api)
    confirm(api, p["id"], card("4000002760003184"))
    sweep(runtime, 60)
    assert get(api, p["id"])["status"] == "requires_action"
    sweep(runtime, 16 * 60)
    d = get(api, p["id"])
    assert (d["status"], d["last_payment_error"]["code"]) == ("failed", "authentication_expired")


def test_a_card_charge_whose_answer_was_lost_is_asked_about_by_the_sweep(api, runtime):
    """The process died between the commit and the charge: the sweep asks the rail, which
    never saw the charge (the sandbox keeps none): failed, nothing taken."""
    p = create(api)
    with runtime.uow() as uow:
        row = payments_core.locked(uow, p["id"])
        row.status, row.method, row.fee = "processing", "card", 49
        row.next_check_at = utcnow() + payments_core.CARD_RECHECK
        uow.commit()
    sweep(runtime, 31)
    d = get(api, p["id"])
    assert (d["status"], d["last_payment_error"]["code"]) == ("failed", "charge_incomplete")


def test_a_card_refund_goes_back_over_the_card_rail(api, runtime, shop):
    p = create(api, amount=10000)
    confirm(api, p["id"], card("4242424242424242"))
    r = refund(api, p["id"], 2500)
    assert r.status_code == 201 and r.get_json()["data"]["status"] == "pending"
    got = api.get(f"/v1/refunds/{r.get_json()['data']['id']}").get_json()["data"]
    assert got["status"] == "succeeded"
    # 3.9% of 100.00 = 3.90 kept; a quarter of it goes back with a quarter of the amount.
    assert balances(runtime, shop[0]) == {"merchant": 9610 - (2500 - 97), "fees": 390 - 97, "refunds_pending": 0}


def test_invalid_card_details_are_422_before_anything_is_charged(api):
    p = create(api)
    bad = card("4242424242424242")
    bad["card"]["exp_month"] = 13
    assert confirm(api, p["id"], bad).status_code == 422
    bad = card("4242-4242")
    assert confirm(api, p["id"], bad).status_code == 422
    assert get(api, p["id"])["status"] == "requires_payment_method"


def test_create_with_confirm_true_pays_in_one_request(api, runtime, shop):
    buyer(runtime)
    r = api.post("/v1/payments", {"amount": 500, "currency": "USD", "confirm": True,
                                  "payment_method": {"type": "soxara_wallet", "phone_number": BUYER}})
    assert r.status_code == 201 and r.get_json()["data"]["status"] == "succeeded", r.get_json()
    assert r.get_json()["data"]["client_secret"]
    assert balances(runtime, shop[0])["merchant"] == 495
    r = api.post("/v1/payments", {"amount": 500, "currency": "USD", "confirm": True})
    assert r.status_code == 422 and r.get_json()["error"]["details"]["field"] == "payment_method"
    r = api.post("/v1/payments", {"amount": 500, "currency": "USD", "confirm": True,
                                  "payment_method": {"type": "card", "card": {
                                      "number": "4242424242424242", "exp_month": 1, "exp_year": 2099,
                                      "cvc": "123"}}})
    assert r.status_code == 201 and r.get_json()["data"]["status"] == "processing"


def test_confirm_refuses_a_payment_read_without_its_row_lock(runtime, shop):
    """A payment read without its lock could be confirmed by two requests at once and paid
    twice: `confirm` pays only one this transaction created or locked."""
    mid, _ = shop
    buyer(runtime)
    with runtime.uow() as uow:
        p, _ = payments_core.create(uow, runtime, merchant_id=mid, livemode=False, amount=500, currency="USD")
        uow.commit()
    wallet = payments_core.PaymentMethod("soxara_wallet", BUYER)
    with runtime.uow() as uow:
        unlocked = payments_core.get_for_merchant(uow, mid, False, p.id)
        with pytest.raises(RuntimeError, match="without its row lock"):
            payments_core.confirm(uow, runtime, unlocked, wallet)
    with runtime.uow() as uow:
        paid = payments_core.confirm(uow, runtime, payments_core.locked(uow, p.id), wallet)
        assert paid.status == "succeeded"
        uow.commit()
    with runtime.uow() as uow:  # a lock ends with its transaction
        again = payments_core.get_for_merchant(uow, mid, False, p.id)
        with pytest.raises(RuntimeError, match="without its row lock"):
            payments_core.confirm(uow, runtime, again, wallet)
    assert balances(runtime, mid)["merchant"] == 500 - paid.fee
