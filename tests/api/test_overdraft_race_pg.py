"""An overdraft that only the ledger's constraint can see: the transfer's own balance
check passed, then money left the wallet before its balance move reached the row. On
PostgreSQL, where the move waits for the row lock and is refused on the current row."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from sqlalchemy import text

from core.errors import InsufficientFunds
from core.identity import users
from core.wallets import adjustments, ledger, sandbox, transfers, wallets
from tests.conftest import signed_in

ALICE, BOB, CAROL = "+231881000001", "+231881000002", "+231881000003"


def _alice(rt, cents: int):
    with rt.uow() as uow:
        a, w = sandbox.make_buyer(uow, ALICE, amount=cents)
        users.get_or_create(uow, BOB)
        users.get_or_create(uow, CAROL)
        uow.commit()
    return a, w


def _balances(rt, *phones):
    with rt.uow() as uow:
        out = []
        for phone in phones:
            u = users.get_or_create(uow, phone)
            out.append(wallets.wallet_for(uow, wallets.USER, u.id, "USD", False).balance)
        assert ledger.check(uow) == []
        return out


@pytest.mark.postgres
def test_two_interleaved_transfers_both_past_the_balance_check_only_one_moves(pg_runtime):
    rt = pg_runtime
    a, _ = _alice(rt, 1000)
    alice = transfers.Party("user", a.id, False)
    with rt.uow() as first, rt.uow() as second:
        # Both read a balance of 1000 and write their transfer; nothing is sent yet.
        transfers.send(first, rt, sender=alice, amount=700, currency="USD", to_phone=BOB)
        transfers.send(second, rt, sender=alice, amount=700, currency="USD", to_phone=CAROL)
        first.commit()
        with pytest.raises(InsufficientFunds):
            second.commit()
    assert _balances(rt, ALICE, BOB, CAROL) == [300, 700, 0]
    with rt.uow() as uow:  # the refused transfer left nothing behind: no row, no event, no notice
        counts = [uow.session.scalar(text(f"SELECT count(*) FROM {t}"))
                  for t in ("transfers", "events", "outbound_messages")]
    assert counts == [1, 2, 1]


@pytest.mark.postgres
def test_the_api_stores_a_refusal_that_came_with_the_commit(pg_runtime):
    """The transfer's batch waits on the wallet's row lock held by an adjustment; when
    that commits, the move is refused on the new balance: 422 INSUFFICIENT_FUNDS, stored
    and replayed like any refusal, and nothing moved."""
    from api.app import create_app

    rt = pg_runtime
    a, w = _alice(rt, 1000)
    token, step = signed_in(rt, a.id)
    http = create_app(runtime=rt).test_client()
    headers = {"Authorization": f"Bearer {token}", "X-Step-Up-Token": step,
               "X-Idempotency-Key": uuid.uuid4().hex}
    body = {"amount": 700, "currency": "USD", "to_phone_number": BOB}
    answers: list = []

    with rt.uow() as operator:
        adjustments.adjust(operator, wallet_id=w.id, amount=-500, reason="chargeback")
        operator.send_deferred()  # the move is sent: the row is locked now
        request = threading.Thread(target=lambda: answers.append(http.post("/v1/transfers", json=body,
                                                                           headers=headers)))
        request.start()
        _wait_for_a_lock_waiter(rt)
        operator.commit()
    request.join(30)
    (r,) = answers
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "INSUFFICIENT_FUNDS"
    again = http.post("/v1/transfers", json=body, headers=headers)
    assert again.status_code == 422 and again.headers.get("Idempotent-Replayed") == "true"
    assert _balances(rt, ALICE, BOB) == [500, 0]


def _wait_for_a_lock_waiter(rt, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with rt.engine.connect() as c:
            if c.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                             "AND datname = current_database()")):
                return
        time.sleep(0.02)
    raise AssertionError("the transfer never waited for the wallet's lock")


@pytest.mark.postgres
def test_twenty_payouts_at_once_from_a_merchant_wallet_spend_it_to_the_cent(pg_runtime):
    """A merchant key's payouts (no PIN: its scope is its authority) race for one wallet:
    as many succeed as the balance covers, the rest are 422 INSUFFICIENT_FUNDS."""
    from api.app import create_app
    from tests.conftest import Api, at_once, create_merchant

    rt = pg_runtime
    mid, key = create_merchant(rt)
    with rt.uow() as uow:
        w = wallets.wallet_for(uow, wallets.MERCHANT, mid, "USD", False)
        adjustments.adjust(uow, wallet_id=w.id, amount=150_00, reason="float")
        for i in range(20):
            users.get_or_create(uow, f"+23188170{i:04d}")
        uow.commit()
    app = create_app(runtime=rt)
    answers = at_once(20, lambda i: Api(app.test_client(), key).post(
        "/v1/transfers", {"amount": 10_00, "currency": "USD", "to_phone_number": f"+23188170{i:04d}"}))
    codes = sorted(r.status_code for r in answers)
    assert codes == [201] * 15 + [422] * 5, codes
    assert {r.get_json()["error"]["code"] for r in answers if r.status_code == 422} == {"INSUFFICIENT_FUNDS"}
    with rt.uow() as uow:
        assert wallets.get(uow, w.id).balance == 0
        paid = sum(wallets.wallet_for(uow, wallets.USER, users.find_by_phone(uow, f"+23188170{i:04d}").id,
                                      "USD", False).balance for i in range(20))
        assert paid == 150_00
        assert ledger.check(uow) == []
