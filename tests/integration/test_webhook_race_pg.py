"""Webhook delivery under concurrency on PostgreSQL: many delivery jobs and relays at once
never send one delivery twice at the same time, nor out of order, nor miss one."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

import pytest

from core.webhooks import deliveries
from core.webhooks.sender import Delivery, RecordingSender
from tests.conftest import at_once, create_merchant
from tests.integration.test_webhook_deliveries import HeldJobs, endpoint_for, happen, rows
from workers import webhooks


@pytest.mark.postgres
def test_jobs_racing_for_endpoints_send_each_delivery_once_and_in_order(pg_runtime):
    rt = pg_runtime
    rt.jobs = HeldJobs()
    in_flight: Counter = Counter()
    lock = threading.Lock()

    def slow_ok(sent):
        evt = json.loads(sent.body)["id"]
        with lock:
            in_flight[sent.url] += 1
            assert in_flight[sent.url] == 1, "two deliveries to one endpoint at the same time"
        time.sleep(0.002)
        with lock:
            in_flight[sent.url] -= 1
        return Delivery(200, 2, evt)

    rt.webhooks = RecordingSender(answer=slow_ok)
    mids = [create_merchant(rt, f"Shop {i}")[0] for i in range(3)]
    eps = [endpoint_for(rt, mid, url=f"https://shop{i}.example/h") for i, mid in enumerate(mids)]
    made = {mid: [] for mid in mids}

    def record(i):
        mid = mids[i % 3]
        made[mid] += happen(rt, mid, 10)

    at_once(6, record)  # 60 events, written concurrently
    # relays that deliver what they relayed, racing each other and delivery jobs
    at_once(16, lambda i: webhooks.relay(rt) if i < 4 else webhooks.deliver(eps[i % 3], rt))
    for ep in eps:  # whatever a relay queued instead of delivering (none, unless one failed)
        webhooks.deliver(ep, rt)
    assert len(rows(rt)) == 60
    sent = [(s.url, json.loads(s.body)["id"]) for s in rt.webhooks.sent]
    assert len(sent) == 60 and len(set(sent)) == 60, "each delivery sent once"
    for i, ep in enumerate(eps):
        got = [evt for url, evt in sent if url == f"https://shop{i}.example/h"]
        with rt.uow() as uow:
            order = [d.event_id for d in uow.session.query(deliveries.WebhookDelivery)
                     .filter_by(endpoint_id=ep).order_by(deliveries.WebhookDelivery.seq)]
        assert got == order, "an endpoint's first attempts follow the relay's order"
        assert sorted(got) == sorted(made[mids[i]])
    assert {r[2] for r in rows(rt)} == {"succeeded"}


@pytest.mark.postgres
def test_racing_creations_stop_at_the_limit_and_one_key_makes_one_endpoint(pg_runtime):
    from api.app import create_app
    from core.webhooks.endpoints import MAX_PER_MODE
    from tests.conftest import Api

    rt = pg_runtime
    rt.webhooks = RecordingSender()
    app = create_app(runtime=rt)
    _, key = create_merchant(rt)

    def make(i, idem=None):
        return Api(app.test_client(), key).post(
            "/v1/webhook-endpoints", {"url": f"https://h{i}.example/", "events": ["*"]}, idem=idem)

    statuses = Counter(r.status_code for r in at_once(MAX_PER_MODE + 4, make))
    assert statuses == {201: MAX_PER_MODE, 409: 4}, statuses
    m = Api(app.test_client(), key)
    assert len(m.get("/v1/webhook-endpoints", limit=100).get_json()["data"]["items"]) == MAX_PER_MODE

    # one idempotency key sent eight times at once: one endpoint, one secret
    _, key = create_merchant(rt, "Other")
    answers = at_once(8, lambda i: Api(app.test_client(), key).post(
        "/v1/webhook-endpoints", {"url": "https://once.example/", "events": ["*"]}, idem="same"))
    made = {r.get_json()["data"]["signing_secret"] for r in answers if r.status_code == 201}
    assert len(made) == 1 and {r.status_code for r in answers} <= {201, 409}
    items = Api(app.test_client(), key).get("/v1/webhook-endpoints").get_json()["data"]["items"]
    assert len(items) == 1
