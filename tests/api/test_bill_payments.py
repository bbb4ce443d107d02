"""Billers and bill payments through the HTTP API: paying LEC and LWSC from a wallet, the
worker paying TIMM, the sandbox's documented accounts, and bad input refused with nothing
moved. The ledger is checked after each."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core.billers import Billers
from core.billers.sandbox import SandboxTimm
from core.bills import bill_payments
from core.db import utcnow
from core.events.events import Event
from core.messaging.outbox import outbox_for
from core.wallets import adjustments, ledger, sandbox, wallets
from tests.conftest import Api, create_merchant, set_user_pin, step_up_token
from workers import bills as bill_jobs

METER, WATER = "04123456789", "20012345"
REJECTS, TIMES_OUT_ONCE, PENDING_UNTIL_ASKED = "04100000001", "04100000002", "04100000003"
SETTLED = timedelta(seconds=6)  # the sandbox settles 5 s after TIMM was asked


class CountingTimm(SandboxTimm):
    """The sandbox TIMM, counting what it was asked per reference."""

    def __init__(self):
        self.pays: list[str] = []
        self.statuses: list[str] = []

    def pay(self, *, reference, **kw):
        self.pays.append(reference)
        return super().pay(reference=reference, **kw)

    def status(self, *, reference, **kw):
        self.statuses.append(reference)
        return super().status(reference=reference, **kw)


def counting(rt) -> CountingTimm:
    timm = CountingTimm()
    rt.billers = Billers(catalog=rt.billers.catalog, test=timm, live=rt.billers.live)
    return timm


@pytest.fixture
def timm(runtime) -> CountingTimm:
    return counting(runtime)


@pytest.fixture
def buyer(client, runtime, user_api):
    """The logged-in user with US$1000 of test money, a PIN and a step-up token."""
    with runtime.uow() as uow:
        sandbox.make_buyer(uow, user_api.phone)
        uow.commit()
    set_user_pin(client, user_api.token)
    user_api.step_up = step_up_token(client, user_api.token)
    return user_api


def pay(who, body, idem=None, step_up=True):
    headers = {"X-Step-Up-Token": who.step_up} if step_up and getattr(who, "step_up", None) else {}
    return who.post("/v1/bill-payments", body, idem=idem, headers=headers)


def lec(amount=2000, account=METER, currency="USD"):
    return {"biller": "LEC", "account_number": account, "amount": amount, "currency": currency}


def settle_later(runtime, after=SETTLED) -> int:
    return bill_jobs.settle_due(runtime, utcnow() + after)


def usd_balance(who) -> int:
    items = who.get("/v1/wallets").get_json()["data"]["items"]
    return next(w for w in items if w["currency"] == "USD")["balance"]


def system_balance(runtime, code, currency="USD") -> int:
    with runtime.uow() as uow:
        w = wallets.find_wallet(uow, wallets.SYSTEM, code, currency, False)
        return w.balance if w else 0


def event_types(runtime, bp_id) -> list[str]:
    with runtime.uow() as uow:
        return list(uow.session.scalars(select(Event.type).where(Event.object_id == bp_id).order_by(Event.id)))


def entries(runtime, bp_id) -> list[str]:
    with runtime.uow() as uow:
        return list(uow.session.scalars(select(ledger.JournalEntry.kind)
                                        .where(ledger.JournalEntry.obj_id == bp_id)
                                        .order_by(ledger.JournalEntry.created_at)))


def count_payments(runtime) -> int:
    with runtime.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(bill_payments.BillPayment))


def ledger_holds(runtime) -> None:
    with runtime.uow() as uow:
        assert ledger.check(uow) == []


# --- the billers -----------------------------------------------------------------------

def test_billers_as_the_contract_lists_them(api, user_api):
    for who in (api, user_api):
        r = who.get("/v1/billers")
        assert r.status_code == 200, r.get_json()
        data = r.get_json()["data"]
        assert (data["has_more"], data["next_cursor"]) == (False, None)
        lec_, lwsc = data["items"]
        assert lec_ == {"code": "LEC", "name": "Liberia Electricity Corporation", "category": "electricity",
                        "prepaid": True, "currencies": ["USD", "LRD"], "account_number_pattern": "^[0-9]{11}$",
                        "account_number_example": "04123456789"}
        assert (lwsc["code"], lwsc["category"], lwsc["prepaid"]) == ("LWSC", "water", False)
    assert Api(api.client).get("/v1/billers").status_code == 401


def test_billers_are_paged_like_every_list(api):
    first = api.get("/v1/billers", limit=1).get_json()["data"]
    assert [b["code"] for b in first["items"]] == ["LEC"] and first["has_more"]
    second = api.get("/v1/billers", limit=1, cursor=first["next_cursor"]).get_json()["data"]
    assert [b["code"] for b in second["items"]] == ["LWSC"] and not second["has_more"]


# --- paying ------------------------------------------------------------------------------

def test_a_user_pays_lec_and_gets_the_token(buyer, runtime, timm):
    r = pay(buyer, lec(2000))
    assert r.status_code == 202, r.get_json()
    bp = r.get_json()["data"]
    assert (bp["status"], bp["amount"], bp["biller"], bp["token"]) == ("pending", 2000, "LEC", None)
    assert bp["id"].startswith("bp_") and bp["payer"] == {"type": "user", "id": buyer.user_id}
    assert usd_balance(buyer) == 100000 - 2000, "the wallet is debited at once"
    assert system_balance(runtime, "bill_clearing") == 2000
    # The job ran after the commit: TIMM was asked to pay, once, with our id as its reference.
    assert timm.pays == [bp["id"]]
    assert buyer.get(f"/v1/bill-payments/{bp['id']}").get_json()["data"]["status"] == "processing"

    assert bill_jobs.settle_due(runtime, utcnow() + timedelta(seconds=2)) == 1  # too early: pending
    assert buyer.get(f"/v1/bill-payments/{bp['id']}").get_json()["data"]["status"] == "processing"
    assert settle_later(runtime) == 1
    done = buyer.get(f"/v1/bill-payments/{bp['id']}").get_json()["data"]
    assert done["status"] == "succeeded" and done["settled_at"]
    assert len(done["token"]) == 24 and [len(g) for g in done["token"].split(" ")] == [4] * 5
    assert done["units"] == "57.1 kWh"  # US$20.00 at the sandbox's 35 cents a kWh
    assert timm.pays == [bp["id"]], "paid once; after that only asked"
    assert usd_balance(buyer) == 100000 - 2000
    assert system_balance(runtime, "bill_clearing") == 0
    assert system_balance(runtime, "biller_settlement") == 2000
    assert entries(runtime, bp["id"]) == ["bill_payment", "bill_paid"]
    assert event_types(runtime, bp["id"]) == ["bill_payment.initiated", "bill_payment.succeeded"]
    with runtime.uow() as uow:
        chat = [m.body for m in outbox_for(uow, buyer.phone, 50, secret_key=runtime.secret_key)]
    assert "Your LEC payment went through: US$20.00 (57.1 kWh) for meter 04123456789" in chat[-2]
    assert chat[-1] == done["token"], "the token is a message of its own, easy to copy"
    assert settle_later(runtime, timedelta(hours=1)) == 0, "nothing is due once settled"
    ledger_holds(runtime)


def test_water_bills_have_no_token(buyer, runtime):
    r = pay(buyer, {"biller": "LWSC", "account_number": WATER, "amount": 1500, "currency": "USD"})
    assert r.status_code == 202, r.get_json()
    settle_later(runtime)
    done = buyer.get(f"/v1/bill-payments/{r.get_json()['data']['id']}").get_json()["data"]
    assert (done["status"], done["token"], done["units"]) == ("succeeded", None, None)
    ledger_holds(runtime)


def test_the_event_carries_the_payment(buyer, runtime):
    bp = pay(buyer, lec()).get_json()["data"]
    settle_later(runtime)
    with runtime.uow() as uow:
        e = uow.session.scalars(select(Event).where(Event.type == "bill_payment.succeeded")).one()
        payload, merchant_id = e.as_payload(), e.merchant_id
    assert merchant_id is None, "a person's own bill: no merchant's webhooks hear of it"
    obj = payload["data"]["object"]
    assert (obj["id"], obj["object"], obj["status"], obj["amount"]) == (bp["id"], "bill_payment", "succeeded", 2000)
    assert len(obj["token"].replace(" ", "")) == 20


def test_a_user_needs_the_step_up(buyer):
    r = pay(buyer, lec(), step_up=False)
    assert (r.status_code, r.get_json()["error"]["code"]) == (403, "STEP_UP_REQUIRED")


def test_a_merchant_pays_from_its_wallet_with_the_scope(client, runtime):
    mid, key = create_merchant(runtime, scopes=["bill_payments:create"])
    _, narrow = create_merchant(runtime, name="Other", scopes=["payments:create"])
    with runtime.uow() as uow:
        w = wallets.wallet_for(uow, wallets.MERCHANT, mid, "LRD", False)
        uow.session.flush()
        adjustments.adjust(uow, wallet_id=w.id, amount=500000, reason="test funds")
        uow.commit()
    r = Api(client, narrow).post("/v1/bill-payments", {**lec(100000), "currency": "LRD"})
    assert r.status_code == 403 and "bill_payments:create" in r.get_json()["error"]["message"]
    r = Api(client, key).post("/v1/bill-payments", {**lec(100000), "currency": "LRD"})
    assert r.status_code == 202, r.get_json()
    bp = r.get_json()["data"]
    assert bp["payer"] == {"type": "merchant", "id": mid} and bp["livemode"] is False
    settle_later(runtime)
    assert Api(client, key).get(f"/v1/bill-payments/{bp['id']}").get_json()["data"]["status"] == "succeeded"
    assert Api(client, narrow).get(f"/v1/bill-payments/{bp['id']}").status_code == 403
    with runtime.uow() as uow:
        heard = uow.session.scalars(select(Event.merchant_id).where(Event.type == "bill_payment.initiated")).one()
    assert heard == mid, "the merchant's webhooks hear of its own bill payments"
    ledger_holds(runtime)


def test_a_retry_with_the_same_key_pays_once(buyer, runtime, timm):
    first = pay(buyer, lec(), idem="bill-1")
    again = pay(buyer, lec(), idem="bill-1")
    assert again.status_code == 202 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.get_json()["data"]["id"] == first.get_json()["data"]["id"]
    assert pay(buyer, lec(2100), idem="bill-1").get_json()["error"]["code"] == "IDEMPOTENCY_CONFLICT"
    assert count_payments(runtime) == 1 and len(timm.pays) == 1
    assert usd_balance(buyer) == 100000 - 2000


def test_the_job_run_again_does_nothing(buyer, runtime, timm):
    bp = pay(buyer, lec()).get_json()["data"]
    assert bill_jobs.settle(bp["id"], runtime) is False, "processing, and not due: another call holds it"
    settle_later(runtime)
    assert bill_jobs.settle(bp["id"], runtime, utcnow() + timedelta(hours=1)) is False
    assert timm.pays == [bp["id"]] and entries(runtime, bp["id"]) == ["bill_payment", "bill_paid"]


# --- the sandbox's documented accounts ---------------------------------------------------

def test_a_rejected_account_is_refunded(buyer, runtime, timm):
    bp = pay(buyer, lec(2500, REJECTS)).get_json()["data"]
    done = buyer.get(f"/v1/bill-payments/{bp['id']}").get_json()["data"]
    assert (done["status"], done["failure_code"]) == ("failed", "invalid_account_number")
    assert usd_balance(buyer) == 100000, "the money is back in the wallet"
    assert system_balance(runtime, "bill_clearing") == 0
    assert entries(runtime, bp["id"]) == ["bill_payment", "bill_refund"]
    assert event_types(runtime, bp["id"]) == ["bill_payment.initiated", "bill_payment.failed"]
    with runtime.uow() as uow:
        last = outbox_for(uow, buyer.phone, 50, secret_key=runtime.secret_key)[-1].body
    assert "did not go through" in last and "back in your wallet" in last and bp["id"] in last
    assert settle_later(runtime) == 0 and timm.pays == [bp["id"]]
    ledger_holds(runtime)


def test_a_time_out_is_asked_about_never_paid_again(buyer, runtime, timm):
    bp = pay(buyer, lec(2000, TIMES_OUT_ONCE)).get_json()["data"]
    assert timm.pays == [bp["id"]]
    assert buyer.get(f"/v1/bill-payments/{bp['id']}").get_json()["data"]["status"] == "processing"
    assert bill_jobs.settle_due(runtime, utcnow() + timedelta(seconds=2)) == 1
    done = buyer.get(f"/v1/bill-payments/{bp['id']}").get_json()["data"]
    assert done["status"] == "succeeded" and done["token"]
    assert timm.pays == [bp["id"]] and timm.statuses == [bp["id"]], "a status query, not a second payment"
    assert entries(runtime, bp["id"]) == ["bill_payment", "bill_paid"]
    assert usd_balance(buyer) == 100000 - 2000
    ledger_holds(runtime)


def test_a_payment_pending_until_asked_settles_at_the_first_question(buyer, runtime, timm):
    bp = pay(buyer, lec(2000, PENDING_UNTIL_ASKED)).get_json()["data"]
    assert bill_jobs.settle_due(runtime, utcnow() + timedelta(seconds=1, milliseconds=100)) == 1
    assert buyer.get(f"/v1/bill-payments/{bp['id']}").get_json()["data"]["status"] == "succeeded"
    assert timm.statuses == [bp["id"]]
    ledger_holds(runtime)


def test_a_lost_job_is_done_by_the_sweep(buyer, runtime, timm):
    from tests.conftest import RefusingJobs

    queue, runtime.jobs = runtime.jobs, RefusingJobs()
    try:
        bp = pay(buyer, lec()).get_json()["data"]
    finally:
        runtime.jobs = queue
    assert timm.pays == [] and usd_balance(buyer) == 100000 - 2000
    assert bill_jobs.settle_due(runtime, utcnow()) == 1 and timm.pays == [bp["id"]]
    settle_later(runtime)
    assert buyer.get(f"/v1/bill-payments/{bp['id']}").get_json()["data"]["status"] == "succeeded"
    ledger_holds(runtime)


# --- reading -----------------------------------------------------------------------------

def test_payments_are_listed_newest_first_and_only_to_their_payer(buyer, api, runtime):
    made = [pay(buyer, lec(100 * (i + 1))).get_json()["data"]["id"] for i in range(3)]
    first = buyer.get("/v1/bill-payments", limit=2).get_json()["data"]
    assert [b["id"] for b in first["items"]] == made[::-1][:2] and first["has_more"]
    rest = buyer.get("/v1/bill-payments", limit=2, cursor=first["next_cursor"]).get_json()["data"]
    assert [b["id"] for b in rest["items"]] == made[:1] and not rest["has_more"]
    assert api.get(f"/v1/bill-payments/{made[0]}").status_code == 404, "a merchant never sees a person's"
    assert api.get("/v1/bill-payments").get_json()["data"]["items"] == []
    assert buyer.get("/v1/bill-payments/bp_0nothing").status_code == 404


# --- bad input: a clear error, nothing moved ----------------------------------------------

BAD = [
    ({"biller": "NAWASCO", "account_number": METER, "amount": 100, "currency": "USD"},
     "VALIDATION_ERROR", "biller", "LEC, LWSC"),
    ({"biller": "lec", "account_number": METER, "amount": 100, "currency": "USD"},
     "VALIDATION_ERROR", "biller", "LEC, LWSC"),
    (lec(100, "4123456789"), "INVALID_ACCOUNT_NUMBER", "account_number", "04123456789"),
    (lec(100, "0412345678X"), "INVALID_ACCOUNT_NUMBER", "account_number", "04123456789"),
    (lec(100, "04123456789 1"), "INVALID_ACCOUNT_NUMBER", "account_number", "04123456789"),
    ({"biller": "LWSC", "account_number": METER, "amount": 100, "currency": "USD"},
     "INVALID_ACCOUNT_NUMBER", "account_number", "20012345"),
    ({"biller": "LEC", "account_number": 4123456789, "amount": 100, "currency": "USD"},
     "VALIDATION_ERROR", "account_number", ""),
    (lec(100, ""), "VALIDATION_ERROR", "account_number", ""),
    (lec(100, currency="EUR"), "INVALID_CURRENCY", "currency", ""),
    ({"biller": "LEC", "account_number": METER, "amount": 100}, "INVALID_CURRENCY", "currency", ""),
    (lec(12.5), "VALIDATION_ERROR", "amount", ""),
    (lec(0), "AMOUNT_TOO_SMALL", "amount", ""),
    (lec(-100), "AMOUNT_TOO_SMALL", "amount", ""),
    ({"account_number": METER, "amount": 100, "currency": "USD"}, "VALIDATION_ERROR", "biller", ""),
]


@pytest.mark.parametrize(("body", "code", "field", "says"), BAD)
def test_bad_input_is_refused_and_nothing_moves(buyer, runtime, timm, body, code, field, says):
    r = pay(buyer, body, idem="bad-1")
    assert r.status_code == 422, r.get_json()
    err = r.get_json()["error"]
    assert (err["code"], err["details"]["field"]) == (code, field), err
    assert says in err["message"]
    assert usd_balance(buyer) == 100000 and count_payments(runtime) == 0 and timm.pays == []
    # Refused before the operation began: not stored, so the corrected request takes the key.
    assert pay(buyer, lec(100), idem="bad-1").status_code == 202


def test_the_wrong_account_number_names_an_example(buyer):
    err = pay(buyer, lec(100, "123")).get_json()["error"]
    assert err["message"] == "that is not a LEC account number; one looks like 04123456789"
    assert err["details"] == {"field": "account_number", "example": "04123456789"}


def test_a_bill_larger_than_the_balance_moves_nothing(buyer, runtime, timm):
    r = pay(buyer, lec(100001), idem="big")
    assert (r.status_code, r.get_json()["error"]["code"]) == (422, "INSUFFICIENT_FUNDS")
    assert pay(buyer, lec(100001), idem="big").headers.get("Idempotent-Replayed") == "true"
    r = pay(buyer, {**lec(500), "currency": "LRD"})
    assert r.get_json()["error"]["code"] == "INSUFFICIENT_FUNDS", "no LRD wallet at all"
    assert usd_balance(buyer) == 100000 and count_payments(runtime) == 0 and timm.pays == []
    with runtime.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Event)
                                  .where(Event.type.like("bill_payment.%"))) == 0
    ledger_holds(runtime)


def test_a_configured_biller_is_listed_and_paid(client, runtime, merchant):
    from core.billers import DEFAULT_BILLERS, catalog

    more = [*[b.as_dict() for b in DEFAULT_BILLERS],
            {"code": "LIBTELCO", "name": "Libtelco", "category": "internet", "prepaid": False,
             "currencies": ["LRD"], "account_number_pattern": "^LT[0-9]{6}$", "account_number_example": "LT123456"}]
    settings = runtime.settings.with_overrides(billers=json.dumps(more))
    runtime.billers = Billers(catalog=catalog(settings), test=SandboxTimm(), live=None)
    api = Api(client, merchant[1])
    assert [b["code"] for b in api.get("/v1/billers").get_json()["data"]["items"]] == ["LEC", "LWSC", "LIBTELCO"]
    r = api.post("/v1/bill-payments", {"biller": "LIBTELCO", "account_number": "LT123456", "amount": 100,
                                       "currency": "USD"})
    assert (r.status_code, r.get_json()["error"]["code"]) == (422, "INVALID_CURRENCY")
    assert "LIBTELCO takes LRD" in r.get_json()["error"]["message"]


def test_the_schedulers_tick_settles_bill_payments(buyer, runtime):
    from workers import scheduled

    bp = pay(buyer, lec()).get_json()["data"]
    done = scheduled.tick(runtime, utcnow() + SETTLED)
    assert done["workers.bills.settle_due"] == 1
    assert buyer.get(f"/v1/bill-payments/{bp['id']}").get_json()["data"]["status"] == "succeeded"


class RaisingTimm(CountingTimm):
    """A TIMM adapter whose pay call blows up (a reset connection): did TIMM take it?"""

    def pay(self, *, reference, **kw):
        self.pays.append(reference)
        raise ConnectionResetError("connection reset by peer")


def test_a_pay_call_that_raises_is_asked_about_never_repaid(buyer, runtime):
    timm = RaisingTimm()
    runtime.billers = Billers(catalog=runtime.billers.catalog, test=timm, live=None)
    bp = pay(buyer, lec()).get_json()["data"]
    assert timm.pays == [bp["id"]]
    assert buyer.get(f"/v1/bill-payments/{bp['id']}").get_json()["data"]["status"] == "processing"
    settle_later(runtime)
    assert buyer.get(f"/v1/bill-payments/{bp['id']}").get_json()["data"]["status"] == "succeeded"
    assert timm.pays == [bp["id"]] and timm.statuses == [bp["id"]]
    ledger_holds(runtime)


def test_timm_off_for_live_money_refuses_before_anything_is_written(client, runtime):
    mid, live_key = create_merchant(runtime, scopes=["bill_payments:create"], live=True)
    runtime.billers = Billers(catalog=runtime.billers.catalog, test=SandboxTimm(), live=None)
    r = Api(client, live_key).post("/v1/bill-payments", lec())
    assert (r.status_code, r.get_json()["error"]["code"]) == (503, "SERVICE_UNAVAILABLE")
    assert "TIMM is not available for live payments" in r.get_json()["error"]["message"]
    assert count_payments(runtime) == 0


def test_a_slow_biller_is_asked_less_often_and_never_refunded(buyer, runtime):
    from core.bills import settlement

    class Slow(CountingTimm):
        def status(self, *, reference, **kw):
            self.statuses.append(reference)
            from core.billers import BillResult

            return BillResult("pending")

    slow = Slow()
    runtime.billers = Billers(catalog=runtime.billers.catalog, test=slow, live=None)
    bp = pay(buyer, lec()).get_json()["data"]
    t = utcnow()
    for _ in range(30):  # a day and more of sweeps, each at the due time
        with runtime.uow() as uow:
            due_at = uow.session.get(bill_payments.BillPayment, bp["id"]).next_check_at
        t = max(t, due_at)
        assert bill_jobs.settle_due(runtime, t) == 1
    gaps = settlement.CHECKS.schedule
    assert len(slow.statuses) == 30 and len(gaps) < 30
    with runtime.uow() as uow:
        row = uow.session.get(bill_payments.BillPayment, bp["id"])
        assert row.status == "processing" and row.status_checks == 30
        assert row.next_check_at - t == settlement.KEEP_ASKING_EVERY
    assert usd_balance(buyer) == 100000 - 2000, "TIMM may have paid: nothing is refunded on a guess"
    ledger_holds(runtime)
