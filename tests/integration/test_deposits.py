"""Cash-in over the sandbox mobile-money rails: the contract's test table."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.db import utcnow
from core.errors import InvalidInput
from core.identity import users
from core.jobs import ADVANCE_DEPOSIT
from core.wallets import deposits, ledger, wallets
from workers import deposits as deposit_sweeps


def _deposit(runtime, phone, method="mtn_momo", amount=2500, currency="USD"):
    with runtime.uow() as uow:
        u = users.get_or_create(uow, "+231881000001")
        d = deposits.create(uow, runtime, user_id=u.id, amount=amount, currency=currency,
                            method=method, phone_number=phone, livemode=False)
        uow.commit()
    return u, d


def _state(runtime, u, d):
    with runtime.uow() as uow:
        dep = uow.session.get(deposits.Deposit, d.id)
        bal = wallets.wallet_for(uow, wallets.USER, u.id, dep.currency, False).balance
        assert ledger.check(uow) == []
        return dep.status, dep.failure_code, bal


@pytest.mark.parametrize("method,prefix", [("mtn_momo", "+231881111"), ("orange_money", "+231771111")])
def test_the_magic_numbers(runtime, method, prefix):
    u, d = _deposit(runtime, prefix + "000", method)
    assert d.status == "pending"  # what the 202 shows; the job ran right after commit
    assert _state(runtime, u, d) == ("succeeded", None, 2500)
    _, d = _deposit(runtime, prefix + "001", method)
    assert _state(runtime, u, d)[:2] == ("failed", "user_rejected")
    _, d = _deposit(runtime, prefix + "003", method)
    assert _state(runtime, u, d)[:2] == ("failed", "INSUFFICIENT_FUNDS")
    assert _state(runtime, u, d)[2] == 2500, "failures move nothing"


def test_any_other_number_succeeds_after_five_seconds(runtime):
    u, d = _deposit(runtime, "+231886543210", amount=700, currency="LRD")
    assert _state(runtime, u, d) == ("pending", None, 0)
    deposit_sweeps.advance_due(runtime, utcnow() + timedelta(seconds=2))
    assert _state(runtime, u, d)[0] == "pending"
    deposit_sweeps.advance_due(runtime, utcnow() + timedelta(seconds=6))
    assert _state(runtime, u, d) == ("succeeded", None, 700)
    deposit_sweeps.advance_due(runtime, utcnow() + timedelta(seconds=60))
    assert _state(runtime, u, d) == ("succeeded", None, 700), "settles once"


def test_the_timeout_number_fails_after_the_timeout(runtime):
    u, d = _deposit(runtime, "+231881111002")
    deposit_sweeps.advance_due(runtime, utcnow() + timedelta(seconds=30))
    assert _state(runtime, u, d)[0] == "pending"
    deposit_sweeps.advance_due(runtime, utcnow() + deposits.TIMEOUT + timedelta(seconds=1))
    assert _state(runtime, u, d) == ("failed", "timeout", 0)


def test_a_deposit_whose_enqueue_failed_after_commit_is_settled_by_the_sweep(runtime):
    from tests.conftest import RefusingJobs

    runtime.jobs = jobs = RefusingJobs()
    u, d = _deposit(runtime, "+231881111000")  # committed: the enqueue's failure is not the caller's
    assert jobs.refused == [(ADVANCE_DEPOSIT, (d.id,))]
    assert _state(runtime, u, d) == ("pending", None, 0)
    assert deposit_sweeps.advance_due(runtime) == 1  # due at once: its row says so
    assert _state(runtime, u, d) == ("succeeded", None, 2500)


def test_unknown_method_is_refused(runtime):
    with pytest.raises(InvalidInput):
        _deposit(runtime, "+231881111000", "paypal")


# --- production: no live money through a sandbox rail (issue 10, point 3) -------------------


@pytest.fixture
def production(runtime):
    """A runtime on the same database with SOXARA_ENV=production's rails (and no real one)."""
    from tests.conftest import build_runtime

    rt = build_runtime(runtime.settings.with_overrides(env="production"))
    yield rt
    rt.dispose()


def _nothing_written(runtime):
    with runtime.uow() as uow:
        assert uow.session.query(deposits.Deposit).count() == 0
        assert uow.session.query(ledger.JournalEntry).count() == 0


@pytest.mark.parametrize("method", ["mtn_momo", "orange_money"])
def test_production_refuses_a_live_deposit_before_writing_anything(production, method):
    from core.errors import Unavailable

    with production.uow() as uow:
        u = users.get_or_create(uow, "+231881000001")
        uow.commit()
    with production.uow() as uow, pytest.raises(Unavailable) as e:
        deposits.create(uow, production, user_id=u.id, amount=10_000_000_000, currency="USD",
                        method=method, phone_number="+231881111000", livemode=True)
    assert e.value.code == "SERVICE_UNAVAILABLE"
    assert e.value.message == f"{method} is not available for live payments"
    _nothing_written(production)


def test_production_test_mode_keeps_the_sandbox(production):
    u, d = _deposit(production, "+231881111000")
    assert _state(production, u, d) == ("succeeded", None, 2500)


def test_a_live_deposit_from_before_is_never_credited_through_the_sandbox(runtime, production):
    """A live deposit the sandbox had started (a development rail, or before this rule) is
    not settled by it in production: no answer, until the timeout fails it."""
    with runtime.uow() as uow:
        u = users.get_or_create(uow, "+231881000001")
        d = deposits.create(uow, runtime, user_id=u.id, amount=2500, currency="USD",
                            method="mtn_momo", phone_number="+231886543210", livemode=True)
        uow.commit()

    def state():
        with runtime.uow() as uow:
            dep = uow.session.get(deposits.Deposit, d.id)
            return dep.status, dep.failure_code, wallets.wallet_for(
                uow, wallets.USER, u.id, "USD", True).balance

    assert state() == ("pending", None, 0)
    deposit_sweeps.advance_due(production, utcnow() + timedelta(seconds=6))
    assert state() == ("pending", None, 0), "the sandbox would have settled it by now"
    deposit_sweeps.advance_due(production, utcnow() + deposits.TIMEOUT + timedelta(seconds=1))
    assert state() == ("failed", "timeout", 0)


class _Held:
    """A job queue that keeps its jobs: what is enqueued never runs."""

    def enqueue(self, job, *args, job_id=None):
        pass


def test_a_live_deposit_never_started_fails_at_once_in_production(runtime, production):
    runtime.jobs = _Held()  # its first job never ran: never started on any rail
    with runtime.uow() as uow:
        u = users.get_or_create(uow, "+231881000001")
        d = deposits.create(uow, runtime, user_id=u.id, amount=2500, currency="USD",
                            method="orange_money", phone_number="+231771111000", livemode=True)
        uow.commit()
    deposit_sweeps.advance_due(production, utcnow())
    with runtime.uow() as uow:
        dep = uow.session.get(deposits.Deposit, d.id)
        assert (dep.status, dep.failure_code, dep.started_at) == ("failed", "rail_unavailable", None)
        assert ledger.check(uow) == []


def test_sandbox_funding_is_test_money_only(runtime):
    with runtime.uow() as uow, pytest.raises(ValueError):
        wallets.system_account(uow, "sandbox_funding", "USD", True)
