"""Webhooks through a worker killed mid-delivery and a Redis outage, on PostgreSQL.

Real `soxara worker` processes deliver a merchant's events to the receiver example of
docs/webhooks.md on loopback. One worker is killed (SIGKILL) while the receiver is in
the middle of a delivery: it has handled the event but not answered. Redis is then
killed and brought back empty while payouts go on, and a second worker takes over. In
the end every event is delivered at least once (the interrupted one twice), and the
receiver's dedupe by event id has handled each exactly once.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from http.server import ThreadingHTTPServer

import pytest
from rq import Worker
from sqlalchemy import select

from core.events import events
from core.wallets import adjustments, ledger, wallets
from core.webhooks import deliveries
from tests.api.test_webhook_receiver import receiver_example
from tests.conftest import Api, create_merchant, funded_people
from tests.processes import RedisServer, WorkerProcess, wait_for
from workers.queue import RQQueue

# The worker, with a lease short enough for the test to see a killed worker's run out.
_WORKER = """
import sys
from datetime import timedelta
from core.webhooks import deliveries
deliveries.LEASE = timedelta(seconds=3)
from api.cli import main
sys.exit(main(["worker"]))
"""
PER_PHASE = 8
DOWN_FOR = 3.0


class Receiver:
    """The documented receiver on 127.0.0.1, counting every request by event id; `hold()`
    makes it keep the next event's request open after handling it, until released."""

    def __init__(self, secret: str):
        ns = receiver_example()
        ns["SECRETS"] = [secret]
        self.handled: list[str] = []
        self.requests: Counter = Counter()
        self.holding = threading.Event()
        self.held = threading.Event()
        self.release = threading.Event()
        self.held_id: str | None = None
        receiver = self

        def handle(event):
            receiver.handled.append(event["id"])
            if receiver.holding.is_set() and receiver.held_id is None:
                receiver.held_id = event["id"]
                receiver.held.set()
                receiver.release.wait(30)

        ns["handle"] = handle

        base: type = ns["SoxaraWebhook"]

        class Counting(base):  # type: ignore[valid-type,misc]
            def do_POST(self):
                receiver.requests[self.headers.get("Soxara-Event-Id")] += 1
                super().do_POST()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Counting)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def start_worker(rt, redis, tmp_path) -> WorkerProcess:
    w = WorkerProcess(rt.settings, redis.url, tmp_path)
    w.argv = [sys.executable, "-c", _WORKER]
    return w


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
def test_a_killed_worker_and_a_redis_outage_lose_no_event_and_the_receiver_sees_each_once(pg_runtime, tmp_path):
    from api.app import create_app

    rt = pg_runtime
    [recipient] = funded_people(rt, 1, 100, first_phone=231886300000)
    mid, key = create_merchant(rt)
    with rt.uow() as uow:
        w = wallets.wallet_for(uow, wallets.MERCHANT, mid, "USD", False)
        adjustments.adjust(uow, wallet_id=w.id, amount=1_000_00, reason="float")
        uow.commit()

    with RedisServer(tmp_path) as redis:
        rt.jobs = queue = RQQueue(redis.url)
        app = create_app(runtime=rt)
        m = Api(app.test_client(), key)
        made = m.post("/v1/webhook-endpoints", {"url": "http://placeholder.example/", "events": ["*"]})
        receiver = Receiver(made.get_json()["data"]["signing_secret"])
        m.patch(f"/v1/webhook-endpoints/{made.get_json()['data']['id']}", {"url": receiver.url})

        def payouts(n: int) -> None:
            for _ in range(n):
                r = m.post("/v1/transfers", {"amount": 100, "currency": "USD",
                                             "to_phone_number": recipient["phone"]})
                assert r.status_code == 201, r.get_json()

        first = start_worker(rt, redis, tmp_path)
        second = start_worker(rt, redis, tmp_path)
        try:
            with first:
                wait_for(lambda: first.running() and Worker.count(connection=queue.redis) > 0, "the worker")
                payouts(PER_PHASE)
                wait_for(lambda: len(set(receiver.handled)) >= PER_PHASE, "deliveries with all up", timeout=60)

                # killed in the middle of a delivery: handled by the receiver, never answered
                receiver.holding.set()
                payouts(1)
                assert receiver.held.wait(30), "the receiver never got the delivery to hold"
                first.proc.kill()
                first.proc.wait(10)
                receiver.release.set()

            # Redis gone, then back empty: payouts go on, their relay jobs are lost
            redis.kill()
            down = time.monotonic()
            payouts(PER_PHASE)
            time.sleep(max(0.0, DOWN_FOR - (time.monotonic() - down)))
            redis.start()
            with second:
                wait_for(lambda: second.running() and Worker.count(connection=queue.redis) > 0, "the second worker")
                payouts(PER_PHASE)

                def all_delivered():
                    second.running()
                    with rt.uow() as uow:
                        ids = set(uow.session.scalars(select(events.Event.id).where(events.Event.merchant_id == mid)))
                        undone = uow.session.scalar(select(deliveries.WebhookDelivery.seq).where(
                            deliveries.WebhookDelivery.status != "succeeded").limit(1))
                    return ids if undone is None and ids <= set(receiver.handled) else None

                ids = wait_for(all_delivered, "every event delivered and handled", timeout=90)
        finally:
            receiver.close()

    # every payout's two events (created, succeeded), each handled exactly once
    assert len(ids) == 2 * (3 * PER_PHASE + 1)
    assert sorted(receiver.handled) == sorted(ids), "the receiver handled each event once"
    assert set(receiver.requests) == ids and all(n >= 1 for n in receiver.requests.values())
    assert receiver.requests[receiver.held_id] >= 2, "the interrupted delivery was made again"
    with rt.uow() as uow:
        assert len(uow.session.scalars(select(deliveries.WebhookDelivery)).all()) == len(ids)
        assert ledger.check(uow) == []
