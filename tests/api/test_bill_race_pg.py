"""Bill payments under fire on PostgreSQL: one payment's job run by many threads at once
pays TIMM once; copies of one request make one payment; bills that together overdraw a
wallet are refused past its balance. The ledger balances to the cent after each."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core.bills import bill_payments
from core.db import utcnow
from core.identity import users
from core.wallets import ledger, sandbox, wallets
from tests.api.test_bill_payments import METER, counting
from tests.conftest import Api, at_once, funded_people, signed_in
from workers import bills as bill_jobs

PHONE = "+231881000013"
THREADS = 8


class Held:
    """A job queue that keeps jobs for the test to run (as many times as it likes)."""

    def __init__(self):
        self.jobs: list[tuple[str, tuple]] = []

    def enqueue(self, job, *args, job_id=None):
        self.jobs.append((job, args))


def _entries(rt, kind: str) -> int:
    with rt.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(ledger.JournalEntry)
                                  .where(ledger.JournalEntry.kind == kind))


def _ledger_holds(rt) -> None:
    with rt.uow() as uow:
        assert ledger.check(uow) == []


@pytest.mark.postgres
def test_one_payments_job_run_at_once_pays_once(pg_runtime):
    rt = pg_runtime
    timm = counting(rt)
    rt.jobs = Held()
    with rt.uow() as uow:
        u, _ = sandbox.make_buyer(uow, PHONE)
        payer = bill_payments.Payer("user", u.id, False)
        bp = bill_payments.create(uow, rt, payer=payer, biller="LEC", account_number=METER, amount=2000,
                                  currency="USD")
        uow.commit()
    assert rt.jobs.jobs == [("bills.settle", (bp.id,))]

    made = at_once(THREADS, lambda i: bill_jobs.settle(bp.id, rt))
    assert sorted(made) == [False] * (THREADS - 1) + [True], "one thread made the call"
    assert timm.pays == [bp.id], "TIMM was asked to pay once"

    later = utcnow() + timedelta(seconds=6)
    asked = at_once(THREADS, lambda i: bill_jobs.settle(bp.id, rt, later))
    assert sum(asked) == 1 and timm.pays == [bp.id] and len(timm.statuses) == 1
    with rt.uow() as uow:
        done = uow.session.get(bill_payments.BillPayment, bp.id)
        assert done.status == "succeeded" and len(done.token) == 20
        balance = wallets.find_wallet(uow, wallets.USER, u.id, "USD", False).balance
    assert (_entries(rt, "bill_payment"), _entries(rt, "bill_paid"), _entries(rt, "bill_refund")) == (1, 1, 0)
    assert balance == 100000 - 2000
    _ledger_holds(rt)


@pytest.mark.postgres
def test_sweepers_and_jobs_at_once_settle_each_payment_once(pg_runtime):
    """Jobs and sweeps of many payments, several at once: each paid once, each settled
    once, refunds for the rejected account, and the ledger exact."""
    rt = pg_runtime
    timm = counting(rt)
    rt.jobs = Held()
    accounts = [METER, "04100000001", "04100000002", "04100000003"] * 3
    with rt.uow() as uow:
        u, _ = sandbox.make_buyer(uow, PHONE)
        payer = bill_payments.Payer("user", u.id, False)
        made = [bill_payments.create(uow, rt, payer=payer, biller="LEC", account_number=a, amount=100 * (i + 1),
                                     currency="USD") for i, a in enumerate(accounts)]
        uow.commit()
    now = utcnow()
    at_once(THREADS, lambda i: bill_jobs.settle_due(rt, now) if i % 2 else
            [bill_jobs.settle(bp.id, rt, now) for bp in made])
    assert sorted(timm.pays) == sorted(bp.id for bp in made)
    later = now + timedelta(seconds=6)
    at_once(THREADS, lambda i: bill_jobs.settle_due(rt, later))
    with rt.uow() as uow:
        statuses = {bp.id: uow.session.get(bill_payments.BillPayment, bp.id).status for bp in made}
        balance = wallets.find_wallet(uow, wallets.USER, u.id, "USD", False).balance
    rejected = {bp.id for bp, a in zip(made, accounts, strict=True) if a.endswith("0000001")}
    assert all(s == ("failed" if i in rejected else "succeeded") for i, s in statuses.items())
    assert sorted(timm.pays) == sorted(bp.id for bp in made), "still one pay each"
    assert _entries(rt, "bill_paid") == len(made) - len(rejected) and _entries(rt, "bill_refund") == len(rejected)
    paid = sum(bp.amount for bp in made if bp.id not in rejected)
    assert balance == 100000 - paid
    with rt.uow() as uow:
        clearing = wallets.find_wallet(uow, wallets.SYSTEM, "bill_clearing", "USD", False).balance
        owed = wallets.find_wallet(uow, wallets.SYSTEM, "biller_settlement", "USD", False).balance
    assert (clearing, owed) == (0, paid), "nothing left in clearing; TIMM is owed exactly what it paid"
    _ledger_holds(rt)


@pytest.mark.postgres
def test_copies_of_one_request_make_one_payment(pg_runtime):
    from api.app import create_app

    rt = pg_runtime
    timm = counting(rt)
    app = create_app(runtime=rt)
    with rt.uow() as uow:
        u, _ = sandbox.make_buyer(uow, PHONE)
        uow.commit()
    token, step = signed_in(rt, u.id)
    key = uuid.uuid4().hex
    body = {"biller": "LEC", "account_number": METER, "amount": 2500, "currency": "USD"}
    answers = at_once(THREADS, lambda i: Api(app.test_client(), token).post(
        "/v1/bill-payments", body, idem=key, headers={"X-Step-Up-Token": step}))
    ok = [r for r in answers if r.status_code == 202]
    busy = [r for r in answers if r.status_code == 409]
    assert ok and len(ok) + len(busy) == THREADS, [r.status_code for r in answers]
    assert {r.get_json()["error"]["code"] for r in busy} <= {"IDEMPOTENCY_IN_PROGRESS"}
    assert len({r.get_json()["data"]["id"] for r in ok}) == 1
    with rt.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(bill_payments.BillPayment)) == 1
        assert wallets.find_wallet(uow, wallets.USER, u.id, "USD", False).balance == 100000 - 2500
    assert len(timm.pays) == 1
    _ledger_holds(rt)


@pytest.mark.postgres
def test_bills_that_together_overdraw_a_wallet_are_refused_past_its_balance(pg_runtime):
    from api.app import create_app

    rt = pg_runtime
    app = create_app(runtime=rt)
    (person,) = funded_people(rt, 1, 10000)  # US$100: room for three bills of US$30
    body = {"biller": "LWSC", "account_number": "20012345", "amount": 3000, "currency": "USD"}
    answers = at_once(THREADS, lambda i: Api(app.test_client(), person["token"]).post(
        "/v1/bill-payments", body, headers={"X-Step-Up-Token": person["step"]}))
    codes = sorted(r.status_code for r in answers)
    assert codes.count(202) == 3, codes
    refused = [r.get_json()["error"]["code"] for r in answers if r.status_code != 202]
    assert set(refused) <= {"INSUFFICIENT_FUNDS", "SERVICE_UNAVAILABLE"}, refused
    with rt.uow() as uow:
        user = users.find_by_phone(uow, person["phone"])
        assert wallets.find_wallet(uow, wallets.USER, user.id, "USD", False).balance == 1000
        assert uow.session.scalar(select(func.count()).select_from(bill_payments.BillPayment)) == 3
    _ledger_holds(rt)

