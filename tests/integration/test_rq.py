"""Jobs on real Redis through RQ: what production and CI run.

The `*_through_a_worker_process` tests go all the way: the web app (the Flask test client,
its runtime enqueueing on Redis) and a `soxara worker` process of their own, started as
production starts it, against the test's PostgreSQL database and Redis database.
"""

from __future__ import annotations

import pytest

from core.identity import users
from core.jobs import TICK
from core.wallets import deposits
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

    from core.db import utcnow
    from core.wallets import ledger, transfers
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

    def broken(rt, now):
        raise RuntimeError("the sweep broke")

    monkeypatch.setattr("workers.transfers.expire_due", broken)
    job = _tick_on_rq(runtime, redis_url)
    assert job.get_status() == "failed"
    assert RQQueue(redis_url).queue.failed_job_registry.count == 1
    assert "SweepsFailed" in job.latest_result().exc_string
    assert "workers.transfers.expire_due" in job.latest_result().exc_string


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
    assert (job.func_name, job.args) == ("workers.jobs.perform", (TICK,))
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


def _a_deposit(rt) -> deposits.Deposit:
    """A deposit the sandbox rail settles at once, made (and its job enqueued) now."""
    with rt.uow() as uow:
        u = users.get_or_create(uow, "+231881000001")
        d = deposits.create(uow, rt, user_id=u.id, amount=900, currency="USD",
                            method="mtn_momo", phone_number="+231881111000", livemode=False)
        uow.commit()
    return d


def _status(rt, model, object_id: str) -> str:
    with rt.uow() as uow:
        return uow.session.get(model, object_id).status


def _works_once_redis_is_back(rt, redis, worker) -> None:
    """The worker finds Redis gone and lives on; Redis starts (empty), and the worker
    settles a deposit made then."""
    from tests.processes import wait_for

    wait_for(lambda: worker.running() and "Redis, for the worker, is unreachable" in worker.log(),
             "the worker to find Redis gone")
    redis.start()
    rt.jobs = RQQueue(redis.url)
    d = _a_deposit(rt)
    wait_for(lambda: worker.running() and _status(rt, deposits.Deposit, d.id) == "succeeded",
             "the deposit to settle once Redis is back")


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
        _works_once_redis_is_back(pg_runtime, redis, worker)
        assert worker.stop() == 0, "SIGTERM stops it cleanly"


@pytest.mark.redis
@pytest.mark.postgres
def test_soxara_worker_started_while_redis_is_down_waits_for_it(pg_runtime, tmp_path):
    from tests.processes import RedisServer, WorkerProcess

    redis = RedisServer(tmp_path)  # its port chosen, the server not started yet
    try:
        with WorkerProcess(pg_runtime.settings, redis.url, tmp_path) as worker:
            _works_once_redis_is_back(pg_runtime, redis, worker)
    finally:
        redis.kill()


# --- through a `soxara worker` process ---------------------------------------------------


@pytest.fixture
def through_redis(pg_runtime, redis_url, tmp_path):
    """(the web app's test client, the worker process): the app enqueues on Redis, and a
    `soxara worker` process runs what it enqueues, and the scheduler's tick by its clock."""
    from api.app import create_app
    from tests.processes import WorkerProcess

    pg_runtime.jobs = RQQueue(redis_url)
    with WorkerProcess(pg_runtime.settings, redis_url, tmp_path) as worker:
        yield create_app(runtime=pg_runtime).test_client(), worker


def _outbox(rt, phone: str) -> list:
    """(body, status, created_at, sent_at) of each message to `phone`, oldest first."""
    from sqlalchemy import select

    from core.messaging.outbox import OutboundMessage as M

    with rt.uow() as uow:
        return list(uow.session.execute(select(M.body, M.status, M.created_at, M.sent_at)
                                        .where(M.to_phone == phone).order_by(M.seq)))


def _sent_by_its_job(rt, phone: str, words: str) -> bool:
    """Whether the message to `phone` containing `words` is sent, and was sent before the
    sweep could have taken it over: by the job its transaction enqueued."""
    from core.messaging import outbox

    for body, status, created_at, sent_at in _outbox(rt, phone):
        if words in body and status == "sent":
            assert sent_at - created_at < outbox.GRACE, "sent by the sweep, not by its job"
            return True
    return False


@pytest.mark.redis
@pytest.mark.postgres
def test_a_deposit_settles_through_a_worker_process(pg_runtime, through_redis):
    from tests.conftest import Api, signed_in
    from tests.processes import wait_for

    client, worker = through_redis
    with pg_runtime.uow() as uow:
        u = users.get_or_create(uow, "+231881000001")
        uow.commit()
    api = Api(client, signed_in(pg_runtime, u.id)[0])
    r = api.post("/v1/deposits", {"amount": 900, "currency": "USD", "method": "mtn_momo",
                                  "phone_number": "+231881111000"})
    assert r.status_code == 202 and r.get_json()["data"]["status"] == "pending"
    dep = r.get_json()["data"]["id"]
    wait_for(lambda: worker.running() and api.get(f"/v1/deposits/{dep}").get_json()["data"]["status"]
             == "succeeded", "the worker to settle the deposit")
    wait_for(lambda: worker.running() and _sent_by_its_job(pg_runtime, "+231881000001", "Added US$9.00"),
             "the deposit's notice")


@pytest.mark.redis
@pytest.mark.postgres
def test_a_chat_reply_is_sent_through_a_worker_process(pg_runtime, through_redis):
    from tests.bot.conftest import Phone
    from tests.processes import wait_for

    client, worker = through_redis
    p = Phone(client, pg_runtime, "+231881234567")
    r = p.post(p.form("HI"))
    assert r.status_code == 200
    replies = _outbox(pg_runtime, p.number)
    assert any("code" in body for body, *_ in replies)
    assert {status for _, status, *_ in replies} == {"queued"}, "answered by a worker, later"
    wait_for(lambda: worker.running() and _sent_by_its_job(pg_runtime, p.number, "code"),
             "the worker to send the reply")


@pytest.mark.redis
@pytest.mark.postgres
def test_a_claim_window_ends_by_the_worker_processs_clock(pg_runtime, through_redis):
    from datetime import timedelta

    from core.db import utcnow
    from core.wallets import sandbox, transfers, wallets
    from tests.processes import wait_for

    _, worker = through_redis
    with pg_runtime.uow() as uow:
        sender, w = sandbox.make_buyer(uow, "+231881000001")
        uow.commit()
    with pg_runtime.uow() as uow:
        t = transfers.send(uow, pg_runtime, sender=transfers.Party("user", sender.id, False), amount=700,
                           currency="USD", to_phone="+231886543210")
        uow.commit()
    with pg_runtime.uow() as uow:  # the window ends now (and no test-mode auto-claim first)
        row = uow.session.get(transfers.Transfer, t.id)
        row.claim_expires_at, row.auto_claim_at = utcnow() - timedelta(seconds=1), None
        uow.commit()

    wait_for(lambda: worker.running() and _status(pg_runtime, transfers.Transfer, t.id) == "expired",
             "the tick, enqueued by the worker's clock, to end the claim window")
    with pg_runtime.uow() as uow:
        assert wallets.get(uow, w.id).balance == sandbox.BUYER_FUNDS, "the money is back"
    wait_for(lambda: worker.running() and _sent_by_its_job(pg_runtime, "+231881000001", "did not claim"),
             "the sender's notice")
