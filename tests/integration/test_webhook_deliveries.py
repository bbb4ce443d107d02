"""The relay, claims, leases, retries and disabling (core/webhooks/deliveries.py), with the
job queue held so each step is taken by hand."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from sqlalchemy import select

from core.db import utcnow
from core.events import events
from core.jobs import RELAY_EVENTS
from core.webhooks import deliveries, endpoints
from core.webhooks.sender import Delivery, RecordingSender
from tests.conftest import create_merchant
from workers import webhook_sender, webhooks
from workers.webhook_sender import HttpWebhookSender


class HeldJobs:
    """A job queue that keeps what it is given, for the test to run or drop."""

    def __init__(self):
        self.enqueued: list[tuple] = []

    def enqueue(self, job, *args, job_id=None):
        self.enqueued.append((job, *args))


@pytest.fixture
def held(runtime):
    runtime.jobs = HeldJobs()
    runtime.webhooks = RecordingSender()
    return runtime.jobs


def endpoint_for(rt, mid, *, live=False, url="https://shop.example/h", events_=("*",)):
    with rt.uow() as uow:
        made = endpoints.create(uow, rt.secret_key, merchant_id=mid, livemode=live, url=url, events=list(events_))
        uow.commit()
    return made.endpoint.id


def happen(rt, mid, n=1, *, live=False, type_="transfer.created") -> list[str]:
    """n events of the merchant, each in a transaction of its own."""
    ids = []
    for i in range(n):
        with rt.uow() as uow:
            ids.append(events.record(uow, type_, object_type="transfer", object_id=f"tr_{i}",
                                     snapshot={"id": f"tr_{i}", "n": i}, livemode=live, merchant_id=mid))
            uow.commit()
    return ids


def relay(rt) -> int:
    return relayed(rt).events


def relayed(rt) -> deliveries.Relayed:
    with rt.uow() as uow:
        done = deliveries.relay(uow)
        uow.commit()
    return done


def record_one(uow, claimed, outcome, now=None) -> str:
    """Record the claim's one delivery's attempt: its status."""
    [item] = claimed.items
    return deliveries.record(uow, claimed, [(item, outcome, now or utcnow())], now=now)[item.seq]


def due_at(rt, now) -> list[str]:
    with rt.uow() as uow:
        return deliveries.due_endpoints(uow, now)


def rows(rt) -> list[tuple]:
    d = deliveries.WebhookDelivery
    with rt.uow() as uow:
        return uow.session.execute(select(d.event_id, d.endpoint_id, d.status, d.attempts).order_by(d.seq)).all()


def test_the_relay_fans_committed_events_out_once_in_order(runtime, held):
    mid, _ = create_merchant(runtime)
    other, _ = create_merchant(runtime, "Other")
    a = endpoint_for(runtime, mid)
    b = endpoint_for(runtime, mid, events_=("transfer.claimed",))
    live = endpoint_for(runtime, mid, live=True)
    endpoint_for(runtime, other)
    ids = happen(runtime, mid, 3) + happen(runtime, mid, 1, type_="transfer.claimed")
    happen(runtime, None)  # a person's own event: no merchant, nothing to relay
    assert held.enqueued == [(RELAY_EVENTS,)] * 4, "one prompt per transaction with a merchant's event"
    held.enqueued.clear()
    done = relayed(runtime)
    assert (done.events, done.endpoints) == (4, (a, b))
    assert rows(runtime) == [(ids[0], a, "pending", 0), (ids[1], a, "pending", 0), (ids[2], a, "pending", 0),
                             (ids[3], a, "pending", 0), (ids[3], b, "pending", 0)]
    held.enqueued.clear()
    assert relay(runtime) == 0 and len(rows(runtime)) == 5
    assert live not in {r[1] for r in rows(runtime)}


def test_a_delivery_job_sends_in_order_and_a_second_job_finds_nothing_to_take(runtime, held):
    mid, _ = create_merchant(runtime)
    ep = endpoint_for(runtime, mid)
    ids = happen(runtime, mid, 4)
    relay(runtime)
    with runtime.uow() as uow:
        first = deliveries.claim(uow, runtime.secret_key, ep, limit=1)
        uow.commit()
    assert first is not None and [i.event_id for i in first.items] == ids[:1]
    # while the first is in flight, nothing else of the endpoint may go: order
    with runtime.uow() as uow:
        assert deliveries.claim(uow, runtime.secret_key, ep) is None
    assert webhooks.deliver(ep, runtime) == 0
    with runtime.uow() as uow:
        assert record_one(uow, first, Delivery(200, 5)) == "succeeded"
        uow.commit()
    assert webhooks.deliver(ep, runtime) == 3
    import json

    assert [json.loads(s.body)["id"] for s in runtime.webhooks.sent] == ids[1:]


def test_a_claim_takes_the_next_deliveries_in_order_and_hands_back_what_it_did_not_send(runtime, held):
    mid, _ = create_merchant(runtime)
    ep = endpoint_for(runtime, mid)
    ids = happen(runtime, mid, 5)
    relay(runtime)
    with runtime.uow() as uow:
        c = deliveries.claim(uow, runtime.secret_key, ep, limit=3)
        uow.commit()
    assert [i.event_id for i in c.items] == ids[:3]
    with runtime.uow() as uow:  # held: nothing after them may go before them
        assert deliveries.claim(uow, runtime.secret_key, ep) is None
    now = utcnow()
    with runtime.uow() as uow:  # the first went, the second failed, the third was not tried
        got = deliveries.record(uow, c, [(c.items[0], Delivery(200, 1), now), (c.items[1], Delivery(500, 1), now)])
        uow.commit()
    assert got == {c.items[0].seq: "succeeded", c.items[1].seq: "pending"}
    with runtime.uow() as uow:
        c2 = deliveries.claim(uow, runtime.secret_key, ep)
        uow.commit()
    # the endpoint is failing now: one at a time; the third, handed back, is next
    assert [i.event_id for i in c2.items] == [ids[2]]
    assert rows(runtime)[:3] == [(ids[0], ep, "succeeded", 1), (ids[1], ep, "pending", 1), (ids[2], ep, "pending", 0)]


def test_a_lease_a_killed_worker_left_runs_out_and_the_delivery_goes_again(runtime, held):
    mid, _ = create_merchant(runtime)
    ep = endpoint_for(runtime, mid)
    [evt] = happen(runtime, mid)
    relay(runtime)
    now = utcnow()
    with runtime.uow() as uow:
        lost = deliveries.claim(uow, runtime.secret_key, ep, now=now)
        uow.commit()
    assert lost is not None
    # the worker died: until the lease runs out nobody else sends it, nor does the sweep ask
    assert due_at(runtime, now + timedelta(seconds=30)) == []
    later = now + deliveries.LEASE + timedelta(seconds=1)
    assert due_at(runtime, later) == [ep]
    with runtime.uow() as uow:
        again = deliveries.claim(uow, runtime.secret_key, ep, now=later)
        uow.commit()
    assert again is not None and again.items[0].event_id == evt and again.token != lost.token
    with runtime.uow() as uow:
        assert record_one(uow, lost, Delivery(200, 1), now=later) == "superseded"
        assert record_one(uow, again, Delivery(200, 1), now=later) == "succeeded"
        uow.commit()
    assert rows(runtime) == [(evt, ep, "succeeded", 1)]
    with runtime.uow() as uow:
        assert len(deliveries.attempts_of(uow, evt)) == 2  # both attempts are on record


def test_the_last_retry_gives_up_and_three_days_of_failures_disable_the_endpoint(runtime, held):
    mid, _ = create_merchant(runtime)
    ep = endpoint_for(runtime, mid)
    watcher = endpoint_for(runtime, mid, url="https://ops.example/h", events_=("webhook_endpoint.disabled",))
    [evt] = happen(runtime, mid)
    relay(runtime)
    start = utcnow()
    with runtime.uow() as uow:
        c = deliveries.claim(uow, runtime.secret_key, ep, now=start)
        uow.commit()
    with runtime.uow() as uow:
        assert record_one(uow, c, Delivery(503, 1), now=start) == "pending"
        uow.commit()
    with runtime.uow() as uow:
        e = uow.session.get(endpoints.WebhookEndpoint, ep)
        assert e.failing_since == start and e.enabled
        d = uow.session.scalar(select(deliveries.WebhookDelivery))
        d.attempts = deliveries.RETRY.max_attempts - 1  # as if it had failed all but once more
        d.next_attempt_at = start
        uow.commit()
    end = start + deliveries.FAILING_FOR + timedelta(seconds=1)
    with runtime.uow() as uow:
        c = deliveries.claim(uow, runtime.secret_key, ep, now=end)
        uow.commit()
    with runtime.uow() as uow:
        assert record_one(uow, c, Delivery(None, 10000, error="timeout"), now=end) == "failed"
        uow.commit()
    assert rows(runtime) == [(evt, ep, "failed", deliveries.RETRY.max_attempts)]
    with runtime.uow() as uow:
        e = uow.session.get(endpoints.WebhookEndpoint, ep)
        assert not e.enabled and e.disabled_reason == "every delivery failed for 3 days"
        [told] = events.list_for(uow, mid, False, limit=10, type_="webhook_endpoint.disabled")
        assert told.object_id == ep
        told_id = told.id
    assert relay(runtime) == 1
    assert rows(runtime)[-1] == (told_id, watcher, "pending", 0)
    # a disabled endpoint is neither claimed nor prompted
    with runtime.uow() as uow:
        assert deliveries.claim(uow, runtime.secret_key, ep, now=end) is None
    # enabled again: a fresh start
    with runtime.uow() as uow:
        e = endpoints.update(uow, mid, False, ep, {"enabled": True})
        assert (e.failing_since, e.disabled_reason) == (None, None)
        uow.commit()


def test_a_success_ends_a_run_of_failures(runtime, held):
    mid, _ = create_merchant(runtime)
    ep = endpoint_for(runtime, mid)
    happen(runtime, mid, 2)
    relay(runtime)
    runtime.webhooks.answer = lambda s: Delivery(500, 1)
    webhooks.deliver(ep, runtime)
    with runtime.uow() as uow:
        assert uow.session.get(endpoints.WebhookEndpoint, ep).failing_since is not None
    runtime.webhooks.answer = lambda s: Delivery(200, 1)
    happen(runtime, mid, 1)
    relay(runtime)
    webhooks.deliver(ep, runtime)
    with runtime.uow() as uow:
        assert uow.session.get(endpoints.WebhookEndpoint, ep).failing_since is None


def test_a_live_delivery_to_a_name_that_now_resolves_inside_is_refused_at_the_worker(runtime, held, monkeypatch):
    mid, _ = create_merchant(runtime, live=True)
    ep = endpoint_for(runtime, mid, live=True, url="https://hooks.shop.example/h")
    happen(runtime, mid, live=True)
    relay(runtime)
    real = socket.getaddrinfo
    connected: list = []

    def resolver(host, port, *a, **kw):
        if host == "hooks.shop.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", port))]
        return real(host, port, *a, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **kw: connected.append(a) or 1 / 0)
    runtime.webhooks = HttpWebhookSender()
    assert webhooks.deliver(ep, runtime) == 1
    assert connected == [], "no connection was even tried"
    with runtime.uow() as uow:
        [a] = uow.session.scalars(select(deliveries.WebhookAttempt)).all()
        assert not a.succeeded and "resolves to 10.0.0.5, a private address" in a.error


def test_a_live_delivery_connects_to_the_address_it_checked_and_names_the_host(monkeypatch):
    from tests.integration.test_webhook_sender import Endpoint, answer

    e = Endpoint(answer(200, b"ok"))
    try:
        port = e.server.server_address[1]
        monkeypatch.setattr(socket, "getaddrinfo", lambda host, p, *a, **kw: [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", p))])
        refused = HttpWebhookSender().send(f"http://hooks.shop.example:{port}/h", {}, b"{}", 2, public_only=True)
        assert refused.error.startswith("refused: hooks.shop.example resolves to 127.0.0.1, a loopback address")
        assert e.seen == []
        monkeypatch.setattr(webhook_sender, "refusal", lambda address: None)  # as if 127.0.0.1 were public
        d = HttpWebhookSender().send(f"http://hooks.shop.example:{port}/h", {}, b"{}", 2, public_only=True)
        assert d.ok and e.seen[0][1]["Host"] == f"hooks.shop.example:{port}"
    finally:
        e.close()
