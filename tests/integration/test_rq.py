"""Jobs on real Redis through RQ: what production and CI run."""

from __future__ import annotations

import pytest

from core import deposits, users
from workers import context
from workers.queue import RQQueue


@pytest.mark.redis
def test_a_deposit_settles_through_an_rq_worker(runtime, redis_url):
    from rq import SimpleWorker

    q = RQQueue(redis_url)
    runtime.jobs = q
    context.set_process_runtime(runtime)  # what `soxara worker` builds from the environment
    try:
        with runtime.uow() as uow:
            u = users.get_or_create(uow, "+231881000001")
            d = deposits.create(uow, runtime, user_id=u.id, amount=900, currency="USD",
                                method="mtn_momo", phone_number="+231881111000", livemode=False)
            uow.commit()
        assert q.queue.count == 1, "enqueued after commit"
        with runtime.uow() as uow:
            assert uow.session.get(deposits.Deposit, d.id).status == "pending"
        SimpleWorker([q.queue], connection=q.redis).work(burst=True)
        with runtime.uow() as uow:
            assert uow.session.get(deposits.Deposit, d.id).status == "succeeded"
    finally:
        context.set_process_runtime(None)


@pytest.mark.redis
def test_nothing_is_enqueued_when_the_transaction_rolls_back(runtime, redis_url):
    q = RQQueue(redis_url)
    runtime.jobs = q
    with runtime.uow() as uow:
        u = users.get_or_create(uow, "+231881000001")
        deposits.create(uow, runtime, user_id=u.id, amount=900, currency="USD",
                        method="mtn_momo", phone_number="+231881111000", livemode=False)
        uow.rollback()
    assert q.queue.count == 0


def _tick_on_rq(runtime, redis_url):
    """Enqueue the scheduler's tick the way `soxara worker`'s clock does, run it with an
    RQ worker: the job."""
    from rq import SimpleWorker

    q = RQQueue(redis_url)
    runtime.jobs = q
    context.set_process_runtime(runtime)
    try:
        job = q.queue.enqueue("workers.scheduled.tick")
        SimpleWorker([q.queue], connection=q.redis).work(burst=True)
    finally:
        context.set_process_runtime(None)
    return job


@pytest.mark.redis
def test_the_scheduler_tick_runs_as_an_rq_job(runtime, redis_url):
    """The tick run by an RQ worker runs the sweeps (a transfer past its claim window goes
    back to its sender) and none of them fails.

    Guards the sweeps reaching RQ: before, tick swallowed every sweep's exception and
    this test only saw that the job itself had not failed."""
    from datetime import timedelta

    from core import ledger, transfers
    from core.db import utcnow
    from tests.integration.test_transfers import ALICE, _balance, _live_send_to_newbie

    window = timedelta(hours=runtime.settings.claim_window_hours)
    t = _live_send_to_newbie(runtime, 400, "USD", funds=1000, now=utcnow() - window - timedelta(seconds=1))
    job = _tick_on_rq(runtime, redis_url)
    assert job.get_status() == "finished", job.latest_result().exc_string
    assert RQQueue(redis_url).queue.failed_job_registry.count == 0
    with runtime.uow() as uow:
        assert uow.session.get(transfers.Transfer, t.id).status == "expired"
        assert _balance(uow, ALICE, livemode=True) == 1000
        assert ledger.check(uow) == []


@pytest.mark.redis
def test_a_tick_whose_sweep_fails_is_a_failed_rq_job(runtime, redis_url, monkeypatch):
    """A failing sweep fails the tick's job, so RQ keeps it among its failed jobs.

    Guards tick swallowing a sweep's exception (workers/scheduled.py)."""
    from workers import scheduled

    def broken(rt, now):
        raise RuntimeError("the sweep broke")

    monkeypatch.setattr(scheduled, "expire_transfers", broken)
    job = _tick_on_rq(runtime, redis_url)
    assert job.get_status() == "failed"
    assert RQQueue(redis_url).queue.failed_job_registry.count == 1
    assert "SweepsFailed" in job.latest_result().exc_string
    assert "workers.scheduled.expire_transfers" in job.latest_result().exc_string


@pytest.mark.redis
def test_the_clocks_failed_ticks_are_kept_an_hour_not_a_year(redis_url):
    """A sweep that keeps failing fails a tick a second; at RQ's default (a year) those
    failed jobs would pile up in Redis by the tens of thousands a day."""
    import threading

    from workers.service import _clock

    class OnePass(threading.Event):  # the clock's wait between ticks ends it
        def wait(self, timeout=None):
            self.set()
            return True

    q = RQQueue(redis_url)
    _clock(q.redis, q.queue, OnePass())
    (job,) = q.queue.jobs
    assert job.func_name == "workers.scheduled.tick"
    assert job.failure_ttl is not None and job.failure_ttl <= 3600


@pytest.mark.redis
def test_soxara_worker_runs_jobs_against_the_database_from_the_environment(runtime, redis_url, monkeypatch):
    from api import cli

    with runtime.uow() as uow:
        u = users.get_or_create(uow, "+231881000001")
        runtime.jobs = RQQueue(redis_url)
        d = deposits.create(uow, runtime, user_id=u.id, amount=900, currency="USD",
                            method="mtn_momo", phone_number="+231881111000", livemode=False)
        uow.commit()
    monkeypatch.setenv("SOXARA_DATABASE_URL", runtime.settings.database_url)
    monkeypatch.setenv("SOXARA_REDIS_URL", redis_url)
    monkeypatch.setenv("SOXARA_SECRET_KEY", runtime.settings.secret_key)
    context.set_process_runtime(None)  # the worker builds its own, as a fresh process would
    try:
        assert cli.main(["worker", "--burst"]) == 0
    finally:
        context.set_process_runtime(None)
    with runtime.uow() as uow:
        assert uow.session.get(deposits.Deposit, d.id).status == "succeeded"
