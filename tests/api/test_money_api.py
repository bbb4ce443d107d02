"""Wallets, transfers, claims and deposits through the HTTP API."""

from __future__ import annotations

import pytest

from core.wallets import ledger, sandbox
from tests.conftest import Api, create_merchant, login, set_user_pin, step_up_token
from workers import transfers as transfer_sweeps

BOB, NEWBIE = "+231881000002", "+231881000009"


@pytest.fixture
def buyer(client, runtime, user_api):
    """The logged-in user, funded as a sandbox buyer, with a PIN and a step-up token."""
    with runtime.uow() as uow:
        sandbox.make_buyer(uow, user_api.phone)
        uow.commit()
    set_user_pin(client, user_api.token)
    user_api.step_up = step_up_token(client, user_api.token)
    return user_api


def send(buyer, body, idem=None, step_up=True):
    headers = {"X-Step-Up-Token": buyer.step_up} if step_up else {}
    return buyer.post("/v1/transfers", body, idem=idem, headers=headers)


def _check(runtime):
    with runtime.uow() as uow:
        assert ledger.check(uow) == []


def _usd(api):
    items = api.get("/v1/wallets").get_json()["data"]["items"]
    return next(w for w in items if w["currency"] == "USD")


def test_a_user_sees_usd_and_lrd_wallets(buyer):
    d = buyer.get("/v1/wallets").get_json()["data"]
    assert sorted(w["currency"] for w in d["items"]) == ["LRD", "USD"]
    usd = _usd(buyer)
    assert usd["balance"] == 100000 and usd["id"].startswith("wal_")
    assert buyer.get(f"/v1/wallets/{usd['id']}").get_json()["data"]["balance"] == 100000


def test_send_to_a_user_and_read_both_histories(buyer, client, runtime):
    bob = Api(client, login(client, runtime, BOB)["access_token"])
    r = send(buyer, {"amount": 1250, "currency": "USD", "to_phone_number": BOB, "note": "rice"})
    assert r.status_code == 201, r.get_json()
    t = r.get_json()["data"]
    assert (t["status"], t["amount"], t["currency"]) == ("succeeded", 1250, "USD")
    assert buyer.get(f"/v1/transfers/{t['id']}").get_json()["data"]["id"] == t["id"]
    assert bob.get(f"/v1/transfers/{t['id']}").status_code == 404, "only the sender reads it"
    mine = buyer.get(f"/v1/wallets/{_usd(buyer)['id']}/transactions").get_json()["data"]["items"]
    assert (mine[0]["amount"], mine[0]["balance_after"], mine[0]["type"], mine[0]["object_id"]) == \
        (-1250, 98750, "transfer", t["id"])
    theirs = bob.get(f"/v1/wallets/{_usd(bob)['id']}/transactions").get_json()["data"]["items"]
    assert (theirs[0]["amount"], theirs[0]["balance_after"]) == (1250, 1250)
    _check(runtime)


def test_a_user_transfer_needs_step_up(buyer):
    r = send(buyer, {"amount": 100, "currency": "USD", "to_phone_number": BOB}, idem="k", step_up=False)
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "STEP_UP_REQUIRED"
    r = send(buyer, {"amount": 100, "currency": "USD", "to_phone_number": BOB}, idem="k")
    assert r.status_code == 201, "the refusal was not stored: the same key works with the token"


@pytest.mark.parametrize("body,code", [
    ({"amount": 100, "currency": "USD", "to_phone_number": "0881000002"}, "INVALID_PHONE_NUMBER"),
    ({"amount": 100, "currency": "USD", "to_phone_number": "+1234"}, "INVALID_PHONE_NUMBER"),
    ({"amount": 100, "currency": "EUR", "to_phone_number": BOB}, "INVALID_CURRENCY"),
    ({"amount": 100, "to_phone_number": BOB}, "INVALID_CURRENCY"),
    ({"amount": 12.5, "currency": "USD", "to_phone_number": BOB}, "VALIDATION_ERROR"),
    ({"amount": "100", "currency": "USD", "to_phone_number": BOB}, "VALIDATION_ERROR"),
    ({"amount": True, "currency": "USD", "to_phone_number": BOB}, "VALIDATION_ERROR"),
    ({"amount": 0, "currency": "USD", "to_phone_number": BOB}, "AMOUNT_TOO_SMALL"),
    ({"amount": -5, "currency": "USD", "to_phone_number": BOB}, "AMOUNT_TOO_SMALL"),
    ({"amount": 100, "currency": "USD", "to_phone_number": BOB, "extra": 1}, "VALIDATION_ERROR"),
    ({"amount": 100, "currency": "USD", "to_phone_number": "+231881234567"}, "VALIDATION_ERROR"),
])
def test_bad_transfers_move_nothing(buyer, runtime, body, code):
    r = send(buyer, body)
    assert r.status_code == 422 and r.get_json()["error"]["code"] == code, r.get_json()
    assert _usd(buyer)["balance"] == 100000
    _check(runtime)


def test_insufficient_funds_is_stored_and_replayed(buyer, runtime):
    body = {"amount": 100001, "currency": "USD", "to_phone_number": BOB}
    a = send(buyer, body, idem="big")
    b = send(buyer, body, idem="big")
    assert a.status_code == b.status_code == 422
    assert a.get_json()["error"]["code"] == "INSUFFICIENT_FUNDS" and b.headers["Idempotent-Replayed"] == "true"
    assert _usd(buyer)["balance"] == 100000


def test_replayed_transfer_moves_money_once(buyer, runtime):
    body = {"amount": 300, "currency": "USD", "to_phone_number": BOB}
    a = send(buyer, body, idem="once")
    b = send(buyer, body, idem="once")
    assert a.get_data() == b.get_data() and b.headers["Idempotent-Replayed"] == "true"
    assert _usd(buyer)["balance"] == 99700


def test_viral_send_claimed_by_the_new_number(buyer, client, runtime):
    from tests.integration.test_transfers import _sent_to

    t = send(buyer, {"amount": 500, "currency": "USD", "to_phone_number": NEWBIE}).get_json()["data"]
    assert t["status"] == "pending_claim" and t["claim_expires_at"].endswith("Z")
    code = _sent_to(runtime, NEWBIE)[-1].split("CLAIM ")[-1].split(")")[0]
    # Someone else cannot claim it...
    r = buyer.post("/v1/transfers/claim", {"claim_code": code})
    assert r.status_code == 404
    # ...the new number can, once.
    newbie = Api(client, login(client, runtime, NEWBIE)["access_token"])
    r = newbie.post("/v1/transfers/claim", {"claim_code": code})
    assert r.status_code == 200 and r.get_json()["data"]["status"] == "claimed"
    assert _usd(newbie)["balance"] == 500
    r = newbie.post("/v1/transfers/claim", {"claim_code": code})
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "INVALID_STATE"
    assert buyer.get(f"/v1/transfers/{t['id']}").get_json()["data"]["status"] == "claimed"
    _check(runtime)


def test_expired_claim_is_422(buyer, client, runtime):
    from datetime import timedelta

    from core.db import utcnow
    from tests.integration.test_transfers import _sent_to

    send(buyer, {"amount": 500, "currency": "USD", "to_phone_number": NEWBIE})
    code = _sent_to(runtime, NEWBIE)[-1].split("CLAIM ")[-1].split(")")[0]
    transfer_sweeps.expire_due(runtime, utcnow() + timedelta(hours=runtime.settings.claim_window_hours + 1))
    newbie = Api(client, login(client, runtime, NEWBIE)["access_token"])
    r = newbie.post("/v1/transfers/claim", {"claim_code": code})
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "CLAIM_EXPIRED"
    assert _usd(buyer)["balance"] == 100000


def test_merchant_payout_and_wallets(client, runtime):
    from core.wallets import adjustments, wallets

    mid, key = create_merchant(runtime, scopes=["transfers:create", "wallets:read"])
    m = Api(client, key)
    items = m.get("/v1/wallets").get_json()["data"]["items"]
    usd = next(w for w in items if w["currency"] == "USD")
    assert usd["owner"] == {"type": "merchant", "id": mid} and usd["livemode"] is False
    with runtime.uow() as uow:
        adjustments.adjust(uow, wallet_id=usd["id"], amount=5000, reason="float")
        uow.commit()
    r = m.post("/v1/transfers", {"amount": 2000, "currency": "USD", "to_phone_number": BOB})
    assert r.status_code == 201 and r.get_json()["data"]["status"] == "pending_claim"
    assert m.get(f"/v1/wallets/{usd['id']}").get_json()["data"]["balance"] == 3000
    # a key without the scope
    _, weak = create_merchant(runtime, "Weak", scopes=["payments:read"])
    r = Api(client, weak).post("/v1/transfers", {"amount": 1, "currency": "USD", "to_phone_number": BOB})
    assert r.status_code == 403 and "transfers:create" in r.get_json()["error"]["message"]
    # another merchant's or another mode's wallet is 404
    with runtime.uow() as uow:
        live = wallets.wallet_for(uow, wallets.MERCHANT, mid, "USD", True)
        uow.commit()
    assert m.get(f"/v1/wallets/{live.id}").status_code == 404
    assert Api(client, weak).get(f"/v1/wallets/{usd['id']}").status_code == 403


@pytest.fixture
def both_modes(client, runtime):
    """One merchant's test key and live key (Api each, with `.wallet`: its USD wallet of
    that mode, funded with $50), and BOB a user."""
    from core.identity import users
    from core.merchants.keys import mint_key
    from core.wallets import adjustments, wallets

    mid, test_key = create_merchant(runtime, scopes=["transfers:create", "wallets:read"])
    with runtime.uow() as uow:
        live_key = mint_key(uow, runtime.secret_key, mid, livemode=True,
                            scopes=["transfers:create", "wallets:read"]).secret
        users.get_or_create(uow, BOB)
        keys = []
        for key, live in ((test_key, False), (live_key, True)):
            a = Api(client, key)
            a.wallet = wallets.wallet_for(uow, wallets.MERCHANT, mid, "USD", live).id
            adjustments.adjust(uow, wallet_id=a.wallet, amount=5000, reason="float")
            keys.append(a)
        uow.commit()
    return keys


def test_a_test_key_and_a_live_key_of_one_merchant_may_share_an_idempotency_key(both_modes, runtime):
    """The contract scopes a key per merchant and mode: a test payout and a live payout
    sent with one X-Idempotency-Key and one body are two requests, and both run.

    Guards the mode in Principal.idempotency_scope (api/auth.py): without it the live
    payout is answered with the test payout's stored response and never runs."""
    body = {"amount": 700, "currency": "USD", "to_phone_number": BOB}
    test, live = (k.post("/v1/transfers", body, idem="payout-7") for k in both_modes)
    assert test.status_code == live.status_code == 201, (test.get_json(), live.get_json())
    assert "Idempotent-Replayed" not in test.headers
    assert "Idempotent-Replayed" not in live.headers, "the live payout ran; it did not replay the test one"
    t, lv = test.get_json()["data"], live.get_json()["data"]
    assert t["id"] != lv["id"] and (t["livemode"], lv["livemode"]) == (False, True)
    for k in both_modes:
        assert k.get(f"/v1/wallets/{k.wallet}").get_json()["data"]["balance"] == 4300
    _check(runtime)


def test_a_transfer_is_404_to_the_same_merchants_key_of_the_other_mode(both_modes):
    """A test key never sees a live object and the other way round: 404, as for another
    merchant's transfer.

    Guards the mode check of transfers.get_for_sender (GET /v1/transfers/{id})."""
    body = {"amount": 700, "currency": "USD", "to_phone_number": BOB}
    test, live = both_modes
    for mine, other in ((test, live), (live, test)):
        tid = mine.post("/v1/transfers", body).get_json()["data"]["id"]
        assert mine.get(f"/v1/transfers/{tid}").status_code == 200
        r = other.get(f"/v1/transfers/{tid}")
        assert r.status_code == 404 and r.get_json()["error"]["code"] == "NOT_FOUND"


def test_transactions_are_keyset_paged(buyer, runtime):
    for i in range(5):
        send(buyer, {"amount": 10 + i, "currency": "USD", "to_phone_number": BOB})
    wid = _usd(buyer)["id"]
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        d = buyer.get(f"/v1/wallets/{wid}/transactions", **params).get_json()["data"]
        seen += d["items"]
        if not d["has_more"]:
            break
        cursor = d["next_cursor"]
    assert len(seen) == 6  # five sends and the sandbox funding
    assert [s["amount"] for s in seen[:5]] == [-14, -13, -12, -11, -10]
    assert buyer.get(f"/v1/wallets/{wid}/transactions", cursor="bogus").status_code == 422


def test_deposits(user_api, runtime):
    r = user_api.post("/v1/deposits", {"amount": 2500, "currency": "LRD", "method": "orange_money",
                                       "phone_number": "+231771111000"})
    assert r.status_code == 202
    d = r.get_json()["data"]
    assert d["status"] == "pending" and d["id"].startswith("dep_")
    got = user_api.get(f"/v1/deposits/{d['id']}").get_json()["data"]
    assert got["status"] == "succeeded"
    lrd = next(w for w in user_api.get("/v1/wallets").get_json()["data"]["items"] if w["currency"] == "LRD")
    assert lrd["balance"] == 2500
    bad = user_api.post("/v1/deposits", {"amount": 1, "currency": "LRD", "method": "cash",
                                         "phone_number": "+231771111000"})
    assert bad.status_code == 422
    fail = user_api.post("/v1/deposits", {"amount": 100, "currency": "USD", "method": "mtn_momo",
                                          "phone_number": "+231881111001"}).get_json()["data"]
    got = user_api.get(f"/v1/deposits/{fail['id']}").get_json()["data"]
    assert (got["status"], got["failure_code"]) == ("failed", "user_rejected")
    _check(runtime)


def test_an_amount_given_twice_is_400_and_moves_nothing(buyer):
    body = b'{"amount": 5, "currency": "USD", "to_phone_number": "' + BOB.encode() + b'", "amount": 6000}'
    r = buyer.client.post("/v1/transfers", data=body, content_type="application/json",
                          headers={"Authorization": f"Bearer {buyer.token}", "X-Step-Up-Token": buyer.step_up,
                                   "X-Idempotency-Key": "twice"})
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "BAD_REQUEST"
    assert "'amount'" in r.get_json()["error"]["message"]
    assert _usd(buyer)["balance"] == 100000


def test_the_wallet_list_pages_like_every_list(buyer):
    first = buyer.get("/v1/wallets", limit=1).get_json()["data"]
    assert len(first["items"]) == 1 and first["has_more"] is True and first["next_cursor"]
    second = buyer.get("/v1/wallets", limit=1, cursor=first["next_cursor"]).get_json()["data"]
    assert len(second["items"]) == 1 and second["has_more"] is False and second["next_cursor"] is None
    assert {first["items"][0]["currency"], second["items"][0]["currency"]} == {"USD", "LRD"}
    assert first["items"][0]["id"] > second["items"][0]["id"], "newest first"
    for bad in ({"limit": 0}, {"limit": "abc"}, {"foo": 1}, {"cursor": "nope"}):
        r = buyer.get("/v1/wallets", **bad)
        assert r.status_code == 422 and r.get_json()["error"]["code"] == "VALIDATION_ERROR", bad


# --- production: no live money through a sandbox rail (issue 10, point 3) -------------------


def _production_settings(database_url: str):
    from tests.conftest import make_settings

    return make_settings(database_url, env="production", secret_key="s" * 40,
                         twilio_auth_token="t" * 32, twilio_account_sid="AC" + "0" * 32,
                         redis_url="redis://127.0.0.1:1/0")


@pytest.mark.postgres
def test_production_refuses_a_live_deposit_with_503_and_writes_nothing(pg_runtime):
    from api.app import create_app
    from core.wallets import deposits
    from tests.conftest import signed_in
    from workers.queue import InProcessRunner
    from workers.runtime import build_runtime

    # production's settings name Redis, which is not there: jobs run in process here
    rt = build_runtime(_production_settings(pg_runtime.settings.database_url), jobs=None)
    rt.jobs = InProcessRunner(rt, "eager")
    try:
        from core.identity import users

        with rt.uow() as uow:
            user = users.get_or_create(uow, "+231881234567")
            uow.commit()
        token, _ = signed_in(rt, user.id)
        api = Api(create_app(runtime=rt).test_client(), token)
        body = {"amount": 10_000_000_000, "currency": "USD", "method": "mtn_momo",
                "phone_number": "+231881111000"}
        for _ in range(2):  # not stored: the same key runs again (once the rail is on)
            r = api.post("/v1/deposits", body, idem="live-1")
            assert r.status_code == 503 and "Idempotent-Replayed" not in r.headers
            assert r.get_json()["error"] == {"code": "SERVICE_UNAVAILABLE",
                                             "message": "mtn_momo is not available for live payments"}
        with rt.uow() as uow:
            assert uow.session.query(deposits.Deposit).count() == 0
            assert ledger.check(uow) == []
    finally:
        rt.dispose()


def test_the_app_logs_at_start_which_rails_carry_live_money(caplog):
    import logging

    from api.app import create_app

    with caplog.at_level(logging.INFO):
        create_app(_production_settings("postgresql://postgres@127.0.0.1:1/never-connected"))
    said = [r.getMessage() for r in caplog.records if "live" in r.getMessage()]
    assert said == ["rails for live money: mtn_momo off (no real credentials), "
                    "orange_money off (no real credentials), card off (no real credentials); "
                    "billers (LEC, LWSC) over TIMM for live money: off (no real credentials); "
                    "WhatsApp messages through Twilio"], said
