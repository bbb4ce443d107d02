"""Idempotency as the contract says it, on SQLite and (concurrently) on PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest


def test_replay_returns_the_same_status_and_body(api):
    a = api.post("/v1/merchant/api-keys", {"name": "x"}, idem="same")
    b = api.post("/v1/merchant/api-keys", {"name": "x"}, idem="same")
    assert a.status_code == b.status_code == 201
    assert a.get_data() == b.get_data()
    assert b.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in a.headers
    assert len(api.get("/v1/merchant/api-keys").get_json()["data"]["items"]) == 2


def test_same_key_other_body_conflicts(api):
    api.post("/v1/merchant/api-keys", {"name": "x"}, idem="k1")
    r = api.post("/v1/merchant/api-keys", {"name": "y"}, idem="k1")
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "IDEMPOTENCY_CONFLICT"


def test_same_key_other_route_conflicts(api):
    kid = api.post("/v1/merchant/api-keys", {}, idem="k2").get_json()["data"]["id"]
    r = api.post(f"/v1/merchant/api-keys/{kid}/revoke", idem="k2")
    assert r.status_code == 409


def test_business_refusal_is_stored_and_replayed(api):
    kid = api.post("/v1/merchant/api-keys", {}).get_json()["data"]["id"]
    api.post(f"/v1/merchant/api-keys/{kid}/revoke")
    a = api.post(f"/v1/merchant/api-keys/{kid}/revoke", idem="again")
    b = api.post(f"/v1/merchant/api-keys/{kid}/revoke", idem="again")
    assert a.status_code == b.status_code == 409 and a.get_data() == b.get_data()
    assert b.headers["Idempotent-Replayed"] == "true"


def test_keys_are_scoped_per_merchant(api, runtime, client):
    from tests.conftest import Api, create_merchant

    _, other = create_merchant(runtime, "Other")
    a = api.post("/v1/merchant/api-keys", {}, idem="shared")
    b = Api(client, other).post("/v1/merchant/api-keys", {}, idem="shared")
    assert a.status_code == b.status_code == 201 and "Idempotent-Replayed" not in b.headers


def test_claim_replay_conflict_and_expiry(runtime):
    from core.db import utcnow
    from core.idempotency import LIFETIME

    store = runtime.idempotency
    with runtime.uow() as uow:
        first = store.claim(uow, "s", "k", "fp")
        assert first.outcome == "run"
        store.complete(uow, first, 201, b'{"ok":1}')
        uow.commit()
    with runtime.uow() as uow:
        replay = store.claim(uow, "s", "k", "fp")
        assert (replay.outcome, replay.status, replay.body) == ("replay", 201, b'{"ok":1}')
        assert store.claim(uow, "s", "k", "other").outcome == "conflict"
    # After 24 hours the key is free again, for any body.
    with runtime.uow() as uow:
        again = store.claim(uow, "s", "k", "other", now=utcnow() + LIFETIME + timedelta(seconds=1))
        assert again.outcome == "run"
        store.complete(uow, again, 200, b"{}")
        uow.commit()
    assert store.recall("s", "k", "other").status == 200


@pytest.mark.postgres
def test_a_copy_that_ran_beside_the_first_cannot_commit(pg_runtime):
    """A copy that read the key free before the first committed and took the lock after:
    it may run, but its outcome cannot commit beside the first's. (On SQLite no copy gets
    that far: the first's running record stops it at its claim.)"""
    from sqlalchemy.exc import IntegrityError

    runtime = pg_runtime
    store = runtime.idempotency
    with runtime.uow() as a, runtime.uow() as c:
        ca = store.claim(a, "s", "k", "fp")
        cc = store.claim(c, "s", "k-read-free", "fp")
        cc.key = "k"  # what it read: nothing stored yet
        store.complete(a, ca, 201, b"first")
        a.commit()
        with pytest.raises(IntegrityError):
            store.complete(c, cc, 201, b"second")  # SQLite writes now, PostgreSQL at commit
            c.commit()
    assert store.recall("s", "k", "fp").body == b"first"


def test_a_running_copy_is_in_progress_until_it_commits(runtime):
    store = runtime.idempotency
    with runtime.uow() as a, runtime.uow() as b:
        ca = store.claim(a, "s", "k", "fp")
        assert ca.outcome == "run"
        assert store.claim(b, "s", "k", "fp").outcome == "in_progress"
        store.complete(a, ca, 201, b"first")
        a.commit()
    with runtime.uow() as b:
        assert store.claim(b, "s", "k", "fp").body == b"first"


def test_an_answer_not_stored_gives_the_key_back(runtime):
    store = runtime.idempotency
    with runtime.uow() as a:
        ca = store.claim(a, "s", "k", "fp")
        a.rollback()
        store.release(ca)
    with runtime.uow() as b:
        assert store.claim(b, "s", "k", "other").outcome == "run", "free for any body again"


def test_sqlite_a_running_record_left_by_a_dead_process_is_taken_over(sqlite_runtime):
    """(PostgreSQL keeps no running record: its lock ends with the dead process's transaction.)"""
    from core.db import utcnow
    from core.idempotency import RUNNING_STALE

    runtime = sqlite_runtime
    store = runtime.idempotency
    with runtime.uow() as a:
        store.claim(a, "s", "k", "fp")  # and the process died here
    with runtime.uow() as b:
        assert store.claim(b, "s", "k", "fp").outcome == "in_progress"
    with runtime.uow() as b:
        later = utcnow() + RUNNING_STALE + timedelta(seconds=1)
        cb = store.claim(b, "s", "k", "fp", now=later)
        assert cb.outcome == "run"
        store.complete(b, cb, 201, b"second")
        b.commit()
    assert store.recall("s", "k", "fp").body == b"second"


def test_two_copies_of_a_wrong_pin_at_once_count_one_try(client, runtime, user_api):
    """The copy that comes while the first runs is 409 IDEMPOTENCY_IN_PROGRESS or replays
    it; it never judges the PIN a second time (which would lock the PIN sooner)."""
    from sqlalchemy import select

    from core.identity import pins
    from tests.conftest import at_once, set_user_pin

    set_user_pin(client, user_api.token, "4821")
    for round_ in range(6):
        key = f"wrong-{round_}"
        answers = at_once(2, lambda i, key=key: user_api.post("/v1/auth/step-up", {"pin": "0000"}, idem=key))
        codes = sorted(r.get_json()["error"]["code"] for r in answers)
        assert codes in (["IDEMPOTENCY_IN_PROGRESS", "INVALID_PIN"], ["INVALID_PIN", "INVALID_PIN"]), codes
        with runtime.uow() as uow:
            assert uow.session.scalar(select(pins.UserPin.failed_attempts)) == 1, f"round {round_}"
        assert user_api.post("/v1/auth/step-up", {"pin": "4821"}).status_code == 200  # back to 0


@pytest.mark.postgres
def test_twenty_identical_requests_at_once_run_exactly_once(pg_runtime):
    from api.app import create_app
    from tests.conftest import Api, create_merchant

    app = create_app(runtime=pg_runtime)
    _, key = create_merchant(pg_runtime)
    barrier = threading.Barrier(20)
    results: list = []

    def fire():
        client = Api(app.test_client(), key)
        barrier.wait()
        r = client.post("/v1/merchant/api-keys", {"name": "race"}, idem="race-key")
        results.append((r.status_code, r.get_json(), r.headers.get("Idempotent-Replayed")))

    threads = [threading.Thread(target=fire) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    created = [r for r in results if r[0] == 201]
    in_progress = [r for r in results if r[0] == 409]
    assert len(created) + len(in_progress) == 20
    assert all(r[1]["error"]["code"] == "IDEMPOTENCY_IN_PROGRESS" for r in in_progress)
    assert len({r[1]["data"]["id"] for r in created}) == 1, "every success is the same key"
    assert sum(1 for r in created if r[2] != "true") == 1, "exactly one ran"
    items = Api(app.test_client(), key).get("/v1/merchant/api-keys", limit=100).get_json()["data"]["items"]
    assert [k["name"] for k in items].count("race") == 1
