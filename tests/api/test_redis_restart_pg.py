"""Redis killed under concurrent transfers on PostgreSQL, then back on its port, empty.

The web app (threads through the Flask test client) enqueues on a Redis server of this
test's own, and a `soxara worker` process (its WhatsApp transport recording what it sends)
runs the jobs and, by its clock, the sweeps. While Redis is down every transfer is still
answered with its outcome; once it is back every notice goes out exactly once, the ones
whose jobs were lost taken up by the sweep, and the ledger balances.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter

import pytest
from redis import Redis
from rq import Worker
from rq.registry import StartedJobRegistry
from sqlalchemy import select

from core.messaging import outbox
from core.wallets import ledger, transfers, wallets
from tests.conftest import Api, funded_people
from tests.processes import RedisServer, WorkerProcess, wait_for
from workers.queue import QUEUE_NAME, RQQueue

USERS, CLIENTS = 12, 6
START = 100_00
PER_PHASE = 30  # transfers answered in each phase: Redis up, down, back
DOWN_FOR = 3.0  # seconds Redis stays down, at least


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
def test_redis_killed_and_restarted_under_concurrent_transfers(pg_runtime, tmp_path):
    from api.app import create_app

    rt = pg_runtime
    people = funded_people(rt, USERS, START, first_phone=231886000000)

    with RedisServer(tmp_path) as redis, \
            WorkerProcess(rt.settings, redis.url, tmp_path, record_sends=True) as worker:
        rt.jobs = queue = RQQueue(redis.url)
        app = create_app(runtime=rt)
        wait_for(lambda: worker.running() and Worker.count(connection=queue.redis) > 0, "the worker to start")
        answers: list[tuple] = []  # (sender, recipient, amount, key, status, body)
        lock, stop = threading.Lock(), threading.Event()

        def client(seed: int) -> None:
            rng, http = random.Random(seed), app.test_client()
            while not stop.is_set():
                s, r = rng.sample(range(USERS), 2)
                amount, key = rng.randint(1, 150), uuid.uuid4().hex
                resp = Api(http, people[s]["token"]).post(
                    "/v1/transfers", {"amount": amount, "currency": "USD", "to_phone_number": people[r]["phone"]},
                    idem=key, headers={"X-Step-Up-Token": people[s]["step"]})
                with lock:
                    answers.append((s, r, amount, key, resp.status_code, resp.get_json()))

        def answered(n: int):
            worker.running()
            return len(answers) >= n

        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        try:
            wait_for(lambda: answered(PER_PHASE), "transfers with Redis up")
            redis.kill()
            killed, before_down = time.monotonic(), len(answers)
            wait_for(lambda: answered(before_down + PER_PHASE) and time.monotonic() - killed >= DOWN_FOR,
                     "transfers with Redis down")
            health = app.test_client().get("/healthz")
            redis.start()
            back = len(answers)
            wait_for(lambda: answered(back + PER_PHASE), "transfers with Redis back")
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        assert health.status_code == 200
        assert health.get_json()["data"]["checks"]["job_queue"] == "unreachable"

        # Every answer is the transfer's outcome, or a 503 with nothing moved: never a 500.
        statuses = Counter(status for *_, status, _ in answers)
        assert set(statuses) <= {201, 503}, statuses
        done = {body["data"]["id"]: (s, r, amount) for s, r, amount, _, status, body in answers if status == 201}
        assert all(b["error"]["code"] == "SERVICE_UNAVAILABLE" for *_, status, b in answers if status == 503)
        assert len(done) >= 3 * PER_PHASE - statuses[503]
        with rt.uow() as uow:
            rows = {t.id: (t.sender_id, t.recipient_user_id, t.amount, t.status)
                    for t in uow.session.scalars(select(transfers.Transfer))}
            assert rows == {tid: (people[s]["id"], people[r]["id"], amount, "succeeded")
                            for tid, (s, r, amount) in done.items()}, "exactly the answered transfers happened"
            expected = {p["id"]: START for p in people}
            for s, r, amount in done.values():
                expected[people[s]["id"]] -= amount
                expected[people[r]["id"]] += amount
            for p in people:
                assert wallets.find_wallet(uow, wallets.USER, p["id"], "USD", False).balance == expected[p["id"]]
            assert ledger.check(uow) == []

        # Every notice goes out once Redis is back: by its job, or by the sweep when the job
        # was lost with Redis. Then nothing is left that could send one again.
        def all_sent():
            worker.running()
            with rt.uow() as uow:
                waiting = uow.session.scalar(select(outbox.OutboundMessage.id)
                                             .where(outbox.OutboundMessage.status != "sent").limit(1))
            started = StartedJobRegistry(QUEUE_NAME, connection=Redis.from_url(redis.url))
            return waiting is None and queue.queue.count == 0 and started.count == 0

        wait_for(all_sent, "every notice to be sent, and no job left that could send one", timeout=60)
        sends = worker.sent()
        for tid, (_, r, _) in done.items():
            to = [m["to"] for m in sends if m["body"].endswith(f"Ref {tid}")]
            assert to == [people[r]["phone"]], f"the notice of {tid} went to {to}"
        assert len(sends) == len(done), "nothing but the notices, each once"
