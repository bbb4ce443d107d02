"""Cash-in under fire on PostgreSQL: copies of one deposit request at once, and many
sweepers settling the same deposits at once. Each deposit exists once and credits its
wallet once; the ledger balances to the cent."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core.db import utcnow
from core.identity import users
from core.wallets import deposits, ledger, wallets
from tests.conftest import Api, at_once, signed_in
from workers import deposits as deposit_sweeps

PHONE = "+231881000001"
COPIES, DEPOSITS, SWEEPERS = 10, 6, 6


@pytest.mark.postgres
def test_copies_of_one_deposit_request_make_one_deposit(pg_runtime):
    from api.app import create_app

    rt = pg_runtime
    app = create_app(runtime=rt)
    with rt.uow() as uow:
        u = users.get_or_create(uow, PHONE)
        uow.commit()
    token, _ = signed_in(rt, u.id)
    key = uuid.uuid4().hex
    body = {"amount": 2500, "currency": "USD", "method": "mtn_momo", "phone_number": "+231886543210"}
    answers = at_once(COPIES, lambda i: Api(app.test_client(), token).post("/v1/deposits", body, idem=key))
    ok = [r for r in answers if r.status_code == 202]
    busy = [r for r in answers if r.status_code == 409]
    assert len(ok) + len(busy) == COPIES and ok, [r.status_code for r in answers]
    assert {r.get_json()["error"]["code"] for r in busy} <= {"IDEMPOTENCY_IN_PROGRESS"}
    assert len({r.get_json()["data"]["id"] for r in ok}) == 1, "every answer names the one deposit"
    with rt.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(deposits.Deposit)) == 1


@pytest.mark.postgres
def test_many_sweepers_settle_each_deposit_once(pg_runtime):
    rt = pg_runtime
    with rt.uow() as uow:
        u = users.get_or_create(uow, PHONE)
        made = [deposits.create(uow, rt, user_id=u.id, amount=100 * (i + 1), currency="USD",
                                method="orange_money", phone_number="+231776543210", livemode=False)
                for i in range(DEPOSITS)]
        uow.commit()
    deposit_sweeps.advance_due(rt, utcnow())  # each asked its rail once: pending for 5 seconds
    later = utcnow() + timedelta(seconds=6)
    settled = at_once(SWEEPERS, lambda i: deposit_sweeps.advance_due(rt, later))
    assert sum(settled) >= DEPOSITS  # every sweeper saw them due; each moved only the pending ones
    with rt.uow() as uow:
        statuses = list(uow.session.scalars(select(deposits.Deposit.status)))
        balance = wallets.wallet_for(uow, wallets.USER, u.id, "USD", False).balance
        credits = uow.session.scalar(select(func.count()).select_from(ledger.JournalEntry)
                                     .where(ledger.JournalEntry.kind == "deposit"))
        assert ledger.check(uow) == []
    assert statuses == ["succeeded"] * DEPOSITS
    assert credits == DEPOSITS and balance == sum(d.amount for d in made)
