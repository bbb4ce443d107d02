"""A dependency down: Redis (the job queue) or the database.

A request whose transaction committed is answered with its outcome, whatever happens to
the work queued after it (the sweeps do it later). A request that cannot be served is 503
SERVICE_UNAVAILABLE with Retry-After, and nothing moved.
"""

from __future__ import annotations

import socket
import time

import pytest

from core import ledger, messaging, sandbox, users, wallets
from core.db import utcnow
from tests.conftest import Api, signed_in
from workers import messages as deliveries
from workers.queue import RQQueue

SENDER, RECIPIENT = "+231881000001", "+231881000002"


def _closed_port() -> int:
    """A local port nothing listens on: connecting is refused, as to a stopped Redis."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _people(rt) -> tuple[Api, str, str]:
    """(the sender's Api headers source, sender id, recipient id): a funded sender, signed in."""
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


def _notices(rt, phone=RECIPIENT) -> list[messaging.OutboxItem]:
    with rt.uow() as uow:
        return messaging.outbox_for(uow, phone)


def test_redis_refusing_a_transfer_is_201_and_the_sweep_sends_its_notice(runtime, client, caplog):
    runtime.jobs = RQQueue(f"redis://127.0.0.1:{_closed_port()}/0")
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

    assert deliveries.retry_due(runtime, utcnow() + messaging.GRACE) == 2
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
