"""Payments and refunds racing on PostgreSQL: the payment's row lock (and the CHECK behind
it) keeps refunds within what was captured, and a payment is paid once however many
confirmations arrive together. Then the ledger, to the cent."""

from __future__ import annotations

import pytest

from core.wallets import ledger, sandbox, wallets
from tests.conftest import Api, at_once, create_merchant

BUYER = "+231886400001"


def _setup(rt, amount: int):
    from api.app import create_app

    app = create_app(runtime=rt)
    mid, key = create_merchant(rt, "Kpelle Crafts")
    with rt.uow() as uow:
        u, _ = sandbox.make_buyer(uow, BUYER)
        uow.commit()
    http = Api(app.test_client(), key)
    pid = http.post("/v1/payments", {"amount": amount, "currency": "USD"}).get_json()["data"]["id"]
    return app, key, mid, u.id, pid


def _balances(rt, mid, uid):
    with rt.uow() as uow:
        assert ledger.check(uow) == []
        return (wallets.wallet_for(uow, wallets.MERCHANT, mid, "USD", False).balance,
                wallets.system_account(uow, "fees", "USD", False).balance,
                wallets.wallet_for(uow, wallets.USER, uid, "USD", False).balance)


@pytest.mark.postgres
def test_twenty_concurrent_refunds_that_together_exceed_the_payment(pg_runtime):
    rt = pg_runtime
    app, key, mid, uid, pid = _setup(rt, 100_00)
    http = Api(app.test_client(), key)
    r = http.post(f"/v1/payments/{pid}/confirm", {"payment_method": {"type": "soxara_wallet", "phone_number": BUYER}})
    assert r.get_json()["data"]["status"] == "succeeded"
    # 20 refunds of $7.00: $140 asked of a $100 payment. Exactly 14 fit ($98), then $2 is left.
    answers = at_once(20, lambda i: Api(app.test_client(), key).post("/v1/refunds", {"payment": pid, "amount": 700}))
    codes = sorted((a.status_code, (a.get_json().get("error") or {}).get("code")) for a in answers)
    assert codes == [(201, None)] * 14 + [(422, "REFUND_EXCEEDS_PAYMENT")] * 6, codes
    assert http.get(f"/v1/payments/{pid}").get_json()["data"]["amount_refunded"] == 98_00
    merchant, fees, buyer = _balances(rt, mid, uid)
    # Fee $1.00; 98% of it ($0.98) went back with the refunds.
    assert (merchant, fees, buyer) == (99_00 - (98_00 - 98), 2, 1000_00 - 2_00)
    r = http.post("/v1/refunds", {"payment": pid})
    assert r.status_code == 201 and r.get_json()["data"]["amount"] == 2_00
    assert _balances(rt, mid, uid) == (0, 0, 1000_00)


@pytest.mark.postgres
def test_concurrent_confirmations_pay_once(pg_runtime):
    rt = pg_runtime
    app, key, mid, uid, pid = _setup(rt, 25_00)
    body = {"payment_method": {"type": "soxara_wallet", "phone_number": BUYER}}
    answers = at_once(10, lambda i: Api(app.test_client(), key).post(f"/v1/payments/{pid}/confirm", body))
    codes = sorted((a.status_code, (a.get_json().get("error") or {}).get("code")) for a in answers)
    assert codes == [(200, None)] + [(409, "INVALID_STATE")] * 9, codes
    assert _balances(rt, mid, uid) == (25_00 - 25, 25, 1000_00 - 25_00)


@pytest.mark.postgres
def test_a_cancel_racing_a_confirmation_leaves_one_outcome(pg_runtime):
    rt = pg_runtime
    app, key, mid, uid, pid = _setup(rt, 10_00)
    body = {"payment_method": {"type": "soxara_wallet", "phone_number": BUYER}}

    def go(i):
        c = Api(app.test_client(), key)
        return c.post(f"/v1/payments/{pid}/confirm", body) if i % 2 else c.post(f"/v1/payments/{pid}/cancel")

    answers = at_once(6, go)
    ok = [a.get_json()["data"]["status"] for a in answers if a.status_code == 200]
    assert len(ok) == 1 and all(a.status_code in (200, 409) for a in answers)
    final = Api(app.test_client(), key).get(f"/v1/payments/{pid}").get_json()["data"]["status"]
    assert final == ok[0]
    paid = final == "succeeded"
    assert _balances(rt, mid, uid) == ((10_00 - 10, 10, 1000_00 - 10_00) if paid else (0, 0, 1000_00))
