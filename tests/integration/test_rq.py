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


@pytest.mark.redis
def test_the_scheduler_tick_runs_as_an_rq_job(runtime, redis_url):
    from rq import SimpleWorker

    q = RQQueue(redis_url)
    runtime.jobs = q
    context.set_process_runtime(runtime)
    try:
        q.queue.enqueue("workers.scheduled.tick")
        SimpleWorker([q.queue], connection=q.redis).work(burst=True)
        assert q.queue.failed_job_registry.count == 0
    finally:
        context.set_process_runtime(None)


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


@pytest.mark.redis
@pytest.mark.postgres
def test_soxara_worker_carries_on_when_redis_dies_under_a_job_and_comes_back_empty(pg_runtime, tmp_path):
    from redis import Redis
    from rq import Queue

    from tests.processes import RedisServer, WorkerProcess, wait_for
    from workers.queue import QUEUE_NAME

    with RedisServer(tmp_path) as redis, WorkerProcess(pg_runtime.settings, redis.url, tmp_path) as worker:
        slow = Queue(QUEUE_NAME, connection=Redis.from_url(redis.url)).enqueue("time.sleep", 2)
        wait_for(lambda: worker.running() and slow.get_status(refresh=True) == "started",
                 "the worker to take the slow job")
        redis.kill()  # RQ's bookkeeping after the job meets a dead Redis (RQ quits there)
        wait_for(lambda: worker.running() and "Redis, for the worker, is unreachable" in worker.log(),
                 "the worker to find Redis gone once the job is done")
        redis.start()
        pg_runtime.jobs = RQQueue(redis.url)
        with pg_runtime.uow() as uow:
            u = users.get_or_create(uow, "+231881000001")
            d = deposits.create(uow, pg_runtime, user_id=u.id, amount=900, currency="USD",
                                method="mtn_momo", phone_number="+231881111000", livemode=False)
            uow.commit()

        def settled():
            worker.running()
            with pg_runtime.uow() as uow:
                return uow.session.get(deposits.Deposit, d.id).status == "succeeded"

        wait_for(settled, "the deposit to settle after Redis came back")
        assert worker.stop() == 0, "SIGTERM stops it cleanly"
