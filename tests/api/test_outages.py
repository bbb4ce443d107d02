"""A dependency down: Redis (the job queue) or the database.

A request whose transaction committed is answered with its outcome, whatever happens to
the work queued after it (the sweeps do it later). A request that cannot be served is 503
SERVICE_UNAVAILABLE with Retry-After, and nothing moved.
"""

from __future__ import annotations

import socket
import time

import pytest
from sqlalchemy import func, select

from core.db import utcnow
from core.identity import users
from core.messaging import outbox
from core.wallets import ledger, sandbox, transfers, wallets
from tests.conftest import Api, closed_port, database_down, raise_sqlstate, signed_in
from workers import messages as deliveries
from workers.queue import RQQueue

SENDER, RECIPIENT = "+231881000001", "+231881000002"


def _people(rt) -> tuple[tuple[str, str], str, str]:
    """((the sender's access token, step-up token), sender id, recipient id): a funded
    sender, signed in."""
    with rt.uow() as uow:
        sender, _ = sandbox.make_buyer(uow, SENDER)
        recipient = users.get_or_create(uow, RECIPIENT)
        uow.commit()
    token, step = signed_in(rt, sender.id)
    return (token, step), sender.id, recipient.id


def _usd(rt, user_id: str) -> int:
    with rt.uow() as uow:
        w = wallets.find_wallet(uow, wallets.USER, user_id, "USD", False)
        return w.balance if w else 0


def _transfer(client, auth, amount=1250, key=None):
    token, step = auth
    return Api(client, token).post("/v1/transfers", {"amount": amount, "currency": "USD",
                                                     "to_phone_number": RECIPIENT},
                                   idem=key, headers={"X-Step-Up-Token": step})


def _notices(rt, phone=RECIPIENT) -> list[outbox.OutboxItem]:
    with rt.uow() as uow:
        return outbox.outbox_for(uow, phone)


def test_redis_refusing_a_transfer_is_201_and_the_sweep_sends_its_notice(runtime, client, caplog):
    runtime.jobs = RQQueue(f"redis://127.0.0.1:{closed_port()}/0")
    auth, sender, recipient = _people(runtime)
    before = _usd(runtime, sender)

    r = _transfer(client, auth)
    assert r.status_code == 201, r.get_json()
    t = r.get_json()["data"]
    assert t["status"] == "succeeded"
    assert (_usd(runtime, sender), _usd(runtime, recipient)) == (before - 1250, 1250)
    (notice,) = _notices(runtime)
    assert t["id"] in notice.body and notice.status == "queued", "its job was lost with Redis"

    h = client.get("/healthz")
    assert h.status_code == 200, "money still moves: no load balancer should pull the app"
    assert h.get_json()["data"] == {"status": "degraded",
                                    "checks": {"database": "ok", "job_queue": "unreachable"}}

    assert _transfer(client, auth, amount=100).status_code == 201
    outage_lines = [r for r in caplog.records if "job queue (Redis) is unreachable" in r.getMessage()]
    assert len(outage_lines) == 1, "the outage is logged once, not once per request"

    assert deliveries.retry_due(runtime, utcnow() + outbox.GRACE) == 2
    assert [n.status for n in _notices(runtime)] == ["sent", "sent"]
    with runtime.uow() as uow:
        assert ledger.check(uow) == []


def test_the_health_check_is_ok_when_every_dependency_is(runtime, client):
    h = client.get("/healthz")  # the in-process runner (eager in tests)
    assert h.status_code == 200
    assert h.get_json()["data"] == {"status": "ok", "checks": {"database": "ok", "job_queue": "ok"}}


@pytest.mark.redis
def test_the_health_check_pings_redis(runtime, client, redis_url):
    runtime.jobs = RQQueue(redis_url)
    assert client.get("/healthz").get_json()["data"]["checks"]["job_queue"] == "ok"


def test_the_health_check_says_when_the_in_process_runner_has_stopped(runtime, client):
    from workers.queue import InProcessRunner

    runtime.jobs = runner = InProcessRunner(runtime, "thread")
    runner.start()
    assert client.get("/healthz").get_json()["data"]["status"] == "ok"
    runner.stop()
    h = client.get("/healthz")
    assert h.status_code == 200
    assert h.get_json()["data"] == {"status": "degraded",
                                    "checks": {"database": "ok", "job_queue": "stopped"}}


def test_a_redis_that_never_answers_holds_a_request_up_briefly(runtime, client):
    # A host that takes the connection and then says nothing (hung, or half-open behind a
    # firewall): without short timeouts and one retry, redis-py waits 5 s four times over.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # the kernel completes connections; nobody ever reads them
        runtime.jobs = RQQueue(f"redis://127.0.0.1:{silent.getsockname()[1]}/0")
        auth, _, _ = _people(runtime)
        started = time.monotonic()
        assert _transfer(client, auth).status_code == 201
        assert client.get("/healthz").get_json()["data"]["status"] == "degraded"
        assert _transfer(client, auth, amount=100).status_code == 201
        elapsed = time.monotonic() - started
    assert elapsed < 7, f"{elapsed:.1f} s for two transfers and a health check (10 s and more before)"


# --- the database ------------------------------------------------------------------------


@pytest.fixture
def pg_client(pg_runtime):
    from api.app import create_app

    return create_app(runtime=pg_runtime).test_client()


def _moved(rt) -> tuple[int, int]:
    """(transfers, journal entries): what a transfer that moved money leaves behind."""
    with rt.uow() as uow:
        assert ledger.check(uow) == []
        return (uow.session.scalar(select(func.count()).select_from(transfers.Transfer)),
                uow.session.scalar(select(func.count()).select_from(ledger.JournalEntry)))


def _unavailable(r, code="SERVICE_UNAVAILABLE"):
    assert r.status_code == 503, r.get_json()
    assert r.get_json()["success"] is False and r.get_json()["error"]["code"] == code
    assert int(r.headers["Retry-After"]) >= 1 and r.headers.get("X-Trace-Id")


def _runs_afresh(rt, client, auth, key, sender_id, before):
    """The same key, once the database is back: the transfer runs (not a replay), once."""
    r = _transfer(client, auth, key=key)
    assert r.status_code == 201 and "Idempotent-Replayed" not in r.headers, r.get_json()
    assert _usd(rt, sender_id) == before - 1250
    assert _transfer(client, auth, key=key).headers.get("Idempotent-Replayed") == "true"


def test_the_database_unreachable_is_503_and_the_same_key_runs_once_it_is_back(pg_runtime, pg_client):
    auth, sender, _ = _people(pg_runtime)
    before, moved = _usd(pg_runtime, sender), _moved(pg_runtime)
    with database_down(pg_runtime):
        _unavailable(_transfer(pg_client, auth, key="k-down"))
        h = pg_client.get("/healthz")
        _unavailable(h)
        assert h.get_json()["error"]["details"]["checks"] == {"database": "unreachable", "job_queue": "ok"}
    assert _moved(pg_runtime) == moved and _usd(pg_runtime, sender) == before
    _runs_afresh(pg_runtime, pg_client, auth, "k-down", sender, before)


def _broken_then_run_afresh(rt, client, monkeypatch, fail) -> None:
    """A transfer whose transaction `fail(uow)` breaks once the transfer's writes are in it:
    503, nothing moved; then the same key, the database well again, runs it once."""
    auth, sender, _ = _people(rt)
    before, moved = _usd(rt, sender), _moved(rt)
    send = transfers.send

    def broken(uow, *args, **kw):
        t = send(uow, *args, **kw)
        fail(uow)
        return t

    monkeypatch.setattr(transfers, "send", broken)
    _unavailable(_transfer(client, auth, key="k-broken"))
    assert _moved(rt) == moved and _usd(rt, sender) == before
    monkeypatch.setattr(transfers, "send", send)
    _runs_afresh(rt, client, auth, "k-broken", sender, before)


def test_a_database_that_never_answers_is_503_in_seconds(pg_runtime, monkeypatch):
    # A server that takes the connection and says nothing (hung, or half-open behind a
    # firewall): libpq would wait for its greeting forever.
    import threading

    from api.app import create_app
    from core import db
    from tests.conftest import build_runtime, make_settings

    monkeypatch.setattr(db, "PG_CONNECT_TIMEOUT", 1)
    answers: list = []
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = f"postgresql://postgres@127.0.0.1:{silent.getsockname()[1]}/soxara"
        rt = build_runtime(make_settings(url))
        try:
            client = create_app(runtime=rt).test_client()
            asking = threading.Thread(target=lambda: answers.append(client.get("/healthz")), daemon=True)
            started = time.monotonic()
            asking.start()
            asking.join(15)
            elapsed = time.monotonic() - started
        finally:
            rt.dispose()
    assert answers, "the health check hung on the silent database"
    _unavailable(answers[0])
    assert elapsed < 5, f"{elapsed:.1f} s"


@pytest.mark.parametrize("condition", ["deadlock_detected", "serialization_failure"])
def test_a_deadlock_or_serialization_failure_is_503_with_nothing_moved(pg_runtime, pg_client, monkeypatch,
                                                                       condition):
    _broken_then_run_afresh(pg_runtime, pg_client, monkeypatch, lambda uow: raise_sqlstate(uow, condition))


def test_a_connection_lost_mid_request_is_503_with_nothing_moved(pg_runtime, pg_client, monkeypatch):
    from sqlalchemy import text

    def cut_off(uow):
        pid = uow.session.execute(text("SELECT pg_backend_pid()")).scalar()
        with pg_runtime.engine.connect() as other:  # PostgreSQL restarting would do the same
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

    _broken_then_run_afresh(pg_runtime, pg_client, monkeypatch, cut_off)


def test_sqlite_busy_is_503_and_gives_the_key_back(sqlite_runtime, monkeypatch):
    # SQLite's one writer: another process held the file past the busy timeout. The
    # request's running record (core/idempotency.py) must go, or the key would be stuck.
    import sqlite3

    from sqlalchemy.exc import OperationalError

    from api.app import create_app

    def busy(uow):
        raise OperationalError("COMMIT", {}, sqlite3.OperationalError("database is locked"))

    _broken_then_run_afresh(sqlite_runtime, create_app(runtime=sqlite_runtime).test_client(), monkeypatch, busy)


def test_a_bug_is_still_a_500(runtime, client, monkeypatch):
    auth, sender, _ = _people(runtime)

    def bug(uow, *args, **kw):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(transfers, "send", bug)
    r = _transfer(client, auth)
    assert r.status_code == 500 and r.get_json()["error"]["code"] == "INTERNAL_ERROR"
