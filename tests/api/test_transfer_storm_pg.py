"""2,000 transfers from 20 concurrent clients among 50 wallets on PostgreSQL, with
repeated idempotency keys mixed in; then the ledger must balance to the cent."""

from __future__ import annotations

import random
import threading
import uuid
from collections import defaultdict

import pytest

from core.identity import users
from core.wallets import ledger, transfers, wallets

USERS, CLIENTS, PER_CLIENT = 50, 20, 100
START = 100_00  # each wallet starts with $100


@pytest.mark.postgres
@pytest.mark.slow
def test_transfer_storm_conserves_money_and_runs_each_key_once(pg_runtime):
    from api.app import create_app
    from tests.conftest import Api, funded_people

    rt = pg_runtime
    app = create_app(runtime=rt)
    people = funded_people(rt, USERS, START, first_phone=231885000000)

    first_outcome: dict[tuple, tuple] = {}   # (sender, key) -> (status, body) of the first answer
    replays: list[tuple] = []                 # (sender, key, status, body) of later answers
    lock = threading.Lock()
    used: list[tuple] = []                    # (sender index, key, body) already sent once
    statuses: dict[int, int] = defaultdict(int)
    barrier = threading.Barrier(CLIENTS)

    def client(seed: int):
        rng = random.Random(seed)
        http = app.test_client()
        barrier.wait()
        for _ in range(PER_CLIENT):
            with lock:
                repeat = used and rng.random() < 0.15
                if repeat:
                    s, key, body = rng.choice(used)
            if not repeat:
                s = rng.randrange(USERS)
                r_ = rng.randrange(USERS - 1)
                r_ = r_ + 1 if r_ >= s else r_
                body = {"amount": rng.randint(1, 4000), "currency": "USD",
                        "to_phone_number": people[r_]["phone"]}
                key = uuid.uuid4().hex
            p = people[s]
            resp = Api(http, p["token"]).post("/v1/transfers", body, idem=key,
                                               headers={"X-Step-Up-Token": p["step"]})
            out = (resp.status_code, resp.get_data())
            with lock:
                statuses[resp.status_code] += 1
                if resp.status_code == 409:
                    # only a concurrent copy of the same key may be refused as in progress
                    assert resp.get_json()["error"]["code"] == "IDEMPOTENCY_IN_PROGRESS"
                    continue
                k = (s, key)
                if k in first_outcome:
                    replays.append((s, key, out, resp.headers.get("Idempotent-Replayed")))
                else:
                    first_outcome[k] = out
                    used.append((s, key, body))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sum(statuses.values()) == CLIENTS * PER_CLIENT
    assert statuses[500] == 0
    assert replays, "repeated keys were exercised"
    for s, key, out, replayed in replays:
        assert out == first_outcome[(s, key)], "a replay answers exactly as the first time"
        assert replayed == "true"
    succeeded = {k for k, (st, _) in first_outcome.items() if st == 201}
    refused = [k for k, (st, body) in first_outcome.items() if st == 422]
    assert succeeded and refused, "some transfers ran and some overdrew"
    assert all(b"INSUFFICIENT_FUNDS" in first_outcome[k][1] for k in refused)

    with rt.uow() as uow:
        assert ledger.check(uow) == [], "every invariant holds"
        rows = uow.session.query(transfers.Transfer).all()
        assert len(rows) == len(succeeded), "every key that succeeded ran exactly once"
        total = 0
        for p in people:
            w = wallets.wallet_for(uow, wallets.USER, p["id"], "USD", False)
            assert w.balance >= 0
            total += w.balance
        assert total == USERS * START, "money conserved to the cent"
        assert all(users.get(uow, p["id"]) for p in people)
