"""Webhook endpoints and events through the API, delivered by the eager job runner to a
recording sender (what reaches a real receiver is tests/api/test_webhook_receiver.py)."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta

import pytest

from core.db import utcnow
from core.webhooks import deliveries
from core.webhooks.sender import Delivery, RecordingSender
from tests.conftest import Api, create_merchant

BOB = "+231886555001"


@pytest.fixture
def sender(runtime):
    runtime.webhooks = RecordingSender()
    return runtime.webhooks


def shop(client, runtime, *, live=False, scopes=None):
    """A merchant's key (every scope by default) and a funded USD wallet to pay out from."""
    from core.wallets import adjustments, wallets

    mid, key = create_merchant(runtime, live=live, scopes=scopes)
    with runtime.uow() as uow:
        w = wallets.wallet_for(uow, wallets.MERCHANT, mid, "USD", live)
        adjustments.adjust(uow, wallet_id=w.id, amount=1_000_00, reason="float")
        uow.commit()
    return mid, Api(client, key)


def payout(m: Api, amount: int = 100) -> str:
    r = m.post("/v1/transfers", {"amount": amount, "currency": "USD", "to_phone_number": BOB})
    assert r.status_code == 201, r.get_json()
    return r.get_json()["data"]["id"]


def add_endpoint(m: Api, url="https://shop.example/hooks", events=("*",), **more) -> dict:
    r = m.post("/v1/webhook-endpoints", {"url": url, "events": list(events), **more})
    assert r.status_code == 201, r.get_json()
    return r.get_json()["data"]


def signatures(header: str) -> tuple[int, list[str]]:
    parts = [p.split("=", 1) for p in header.split(",")]
    return int(dict(parts)["t"]), [v for k, v in parts if k == "v1"]


def signed_by(sent, secret: str) -> bool:
    t, v1s = signatures(sent.headers["Soxara-Signature"])
    want = hmac.new(secret.encode(), f"{t}.".encode() + sent.body, hashlib.sha256).hexdigest()
    return want in v1s


def test_an_endpoint_gets_each_event_signed_with_its_secret_shown_once(client, runtime, sender):
    _, m = shop(client, runtime)
    made = add_endpoint(m, description="orders")
    secret = made["signing_secret"]
    assert secret.startswith("whsec_") and len(secret) == 38
    assert made["id"].startswith("we_") and made["events"] == ["*"] and made["enabled"] is True
    assert made["livemode"] is False and made["description"] == "orders"
    # never again: not in a read, not in a list
    assert "signing_secret" not in m.get(f"/v1/webhook-endpoints/{made['id']}").get_json()["data"]
    listed = m.get("/v1/webhook-endpoints").get_json()["data"]
    assert [e["id"] for e in listed["items"]] == [made["id"]] and "signing_secret" not in listed["items"][0]
    with runtime.uow() as uow:
        stored = uow.session.get(deliveries.WebhookEndpoint, made["id"])
        assert secret.encode() not in stored.secret_sealed

    tr = payout(m)
    assert len(sender.sent) == 1
    sent = sender.sent[0]
    event = json.loads(sent.body)
    assert event["type"] == "transfer.created" and event["object"] == "event" and event["livemode"] is False
    assert event["data"]["object"]["id"] == tr and event["id"].startswith("evt_")
    assert sent.url == "https://shop.example/hooks" and sent.timeout == 10 and sent.public_only is False
    assert sent.headers["Soxara-Event-Id"] == event["id"]
    t, v1s = signatures(sent.headers["Soxara-Signature"])
    assert len(v1s) == 1 and abs(t - utcnow().timestamp()) < 5
    assert signed_by(sent, secret)

    # the event, its delivery and its attempt, in the API
    got = m.get(f"/v1/events/{event['id']}").get_json()["data"]
    assert got["type"] == "transfer.created" and got["data"] == event["data"]
    assert got["deliveries"] == [{"endpoint": made["id"], "status": "succeeded", "attempts": 1,
                                  "next_attempt_at": None, "succeeded_at": got["deliveries"][0]["succeeded_at"]}]
    [attempt] = got["delivery_attempts"]
    assert attempt["succeeded"] is True and attempt["status_code"] == 200 and attempt["endpoint"] == made["id"]


def test_the_create_replays_its_secret_and_nothing_else_shows_it(client, runtime, sender):
    _, m = shop(client, runtime)
    body = {"url": "https://shop.example/a", "events": ["transfer.claimed"]}
    first = m.post("/v1/webhook-endpoints", body, idem="we-1")
    again = m.post("/v1/webhook-endpoints", body, idem="we-1")
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.get_json() == first.get_json()
    assert len(m.get("/v1/webhook-endpoints").get_json()["data"]["items"]) == 1


def test_endpoints_hear_only_the_types_they_asked_for_and_only_their_mode(client, runtime, sender):
    mid, m = shop(client, runtime)
    claimed_only = add_endpoint(m, "https://a.example/", events=["transfer.claimed"])
    everything = add_endpoint(m, "https://b.example/", events=["transfer.created", "transfer.claimed"])
    off = add_endpoint(m, "https://c.example/", enabled=False)
    payout(m)
    assert [s.url for s in sender.sent] == ["https://b.example/"]
    # the same merchant's live key sees none of the test endpoints, and they hear no live event
    from core.merchants import keys

    with runtime.uow() as uow:
        live = keys.mint_key(uow, runtime.secret_key, mid, livemode=True, scopes=list(keys.SCOPES))
        uow.commit()
    lm = Api(client, live.secret)
    assert lm.get("/v1/webhook-endpoints").get_json()["data"]["items"] == []
    for e in (claimed_only, everything, off):
        assert lm.get(f"/v1/webhook-endpoints/{e['id']}").status_code == 404
    assert lm.get("/v1/events").get_json()["data"]["items"] == []


def test_another_merchant_or_a_key_without_the_scope_cannot_touch_an_endpoint(client, runtime, sender):
    _, m = shop(client, runtime)
    made = add_endpoint(m)
    _, other = shop(client, runtime)
    for r in (other.get(f"/v1/webhook-endpoints/{made['id']}"),
              other.patch(f"/v1/webhook-endpoints/{made['id']}", {"enabled": False}),
              other.delete(f"/v1/webhook-endpoints/{made['id']}"),
              other.post(f"/v1/webhook-endpoints/{made['id']}/rotate-secret")):
        assert r.status_code == 404 and r.get_json()["error"]["code"] == "NOT_FOUND"
    _, narrow = shop(client, runtime, scopes=["payments:read"])
    r = narrow.get("/v1/webhook-endpoints")
    assert r.status_code == 403 and "webhooks:manage" in r.get_json()["error"]["message"]
    assert narrow.get("/v1/events").status_code == 403


@pytest.mark.parametrize("url, why", [
    ("not a url", "spaces"),
    ("shop.example/hooks", "http:// or https://"),
    ("ftp://shop.example/", "http:// or https://"),
    ("javascript:alert(1)", "http:// or https://"),
    ("http://", "no host"),
    ("https://user:pw@shop.example/", "credentials"),
    ("https://shop.example:99999/", "not a valid URL"),
    ("https://shop.example/#frag", "fragment"),
    ("https://shop.example/\x07", "control"),
    ("https://" + "a" * 2050 + ".example/", "2048"),
])
def test_urls_that_are_not_http_urls_are_refused(client, runtime, sender, url, why):
    _, m = shop(client, runtime)
    r = m.post("/v1/webhook-endpoints", {"url": url, "events": ["*"]})
    assert r.status_code == 422, r.get_json()
    err = r.get_json()["error"]
    assert err["code"] == "VALIDATION_ERROR" and err["details"]["field"] == "url" and why in err["message"]
    assert m.get("/v1/webhook-endpoints").get_json()["data"]["items"] == []


@pytest.mark.parametrize("host", [
    "127.0.0.1", "localhost", "api.localhost", "[::1]", "10.1.2.3", "192.168.0.10", "172.16.5.4",
    "169.254.169.254", "metadata.google.internal", "[fd00:ec2::254]", "0.0.0.0", "100.64.0.1",
    "2130706433", "0x7f.0.0.1", "127.1", "[::ffff:127.0.0.1]", "intranet", "printer.local",
])
def test_live_endpoints_inside_the_network_are_refused(client, runtime, sender, host):
    _, m = shop(client, runtime, live=True)
    r = m.post("/v1/webhook-endpoints", {"url": f"https://{host}/hooks", "events": ["*"]})
    assert r.status_code == 422, (host, r.get_json())
    assert "live endpoint must be reachable on the internet" in r.get_json()["error"]["message"]
    # a live endpoint on the internet is fine; and a test endpoint may be on localhost
    assert m.post("/v1/webhook-endpoints", {"url": "https://hooks.shop.example/", "events": ["*"]}).status_code == 201
    _, t = shop(client, runtime)
    assert t.post("/v1/webhook-endpoints", {"url": f"http://{host}/hooks", "events": ["*"]}).status_code == 201


@pytest.mark.parametrize("body, field", [
    ({"url": "https://a.example/", "events": []}, "events"),
    ({"url": "https://a.example/", "events": ["transfer.nope"]}, "events"),
    ({"url": "https://a.example/", "events": "*"}, "events"),
    ({"url": "https://a.example/"}, "events"),
    ({"events": ["*"]}, "url"),
    ({"url": 5, "events": ["*"]}, "url"),
    ({"url": "https://a.example/", "events": ["*"], "description": "x" * 501}, "description"),
    ({"url": "https://a.example/", "events": ["*"], "enabled": "yes please"}, "enabled"),
    ({"url": "https://a.example/", "events": ["*"], "secret": "mine"}, "secret"),
])
def test_bad_endpoint_bodies_are_refused_and_nothing_is_made(client, runtime, sender, body, field):
    _, m = shop(client, runtime)
    r = m.post("/v1/webhook-endpoints", body)
    assert r.status_code == 422 and r.get_json()["error"]["details"]["field"] == field, r.get_json()
    assert m.get("/v1/webhook-endpoints").get_json()["data"]["items"] == []


def test_patch_and_delete(client, runtime, sender):
    _, m = shop(client, runtime)
    made = add_endpoint(m)
    r = m.patch(f"/v1/webhook-endpoints/{made['id']}", {"url": "https://new.example/x", "events": ["transfer.created",
                "transfer.created"], "description": None, "enabled": False})
    got = r.get_json()["data"]
    assert r.status_code == 200 and got["url"] == "https://new.example/x" and got["events"] == ["transfer.created"]
    assert got["enabled"] is False and got["description"] is None
    payout(m)
    assert sender.sent == []  # disabled: nothing
    m.patch(f"/v1/webhook-endpoints/{made['id']}", {"enabled": True})
    payout(m)
    assert [s.url for s in sender.sent] == ["https://new.example/x"]
    r = m.patch(f"/v1/webhook-endpoints/{made['id']}", {"url": "gopher://x"})
    assert r.status_code == 422 and m.get(f"/v1/webhook-endpoints/{made['id']}").get_json()["data"]["url"] == \
        "https://new.example/x"
    r = m.delete(f"/v1/webhook-endpoints/{made['id']}")
    assert r.status_code == 200 and r.get_json()["data"] == {"id": made["id"], "object": "webhook_endpoint",
                                                             "deleted": True}
    assert m.get(f"/v1/webhook-endpoints/{made['id']}").status_code == 404
    assert m.delete(f"/v1/webhook-endpoints/{made['id']}", idem="again").status_code == 404
    payout(m)
    assert len(sender.sent) == 1


def test_rotating_signs_with_both_secrets_for_a_day(client, runtime, sender):
    _, m = shop(client, runtime)
    made = add_endpoint(m)
    r = m.post(f"/v1/webhook-endpoints/{made['id']}/rotate-secret")
    assert r.status_code == 200
    new = r.get_json()["data"]["signing_secret"]
    assert new != made["signing_secret"] and r.get_json()["data"]["previous_secret_expires_at"]
    payout(m)
    sent = sender.sent[-1]
    assert len(signatures(sent.headers["Soxara-Signature"])[1]) == 2
    assert signed_by(sent, new) and signed_by(sent, made["signing_secret"])
    # a day later the old one no longer signs
    from core.webhooks import endpoints

    with runtime.uow() as uow:
        e = uow.session.get(endpoints.WebhookEndpoint, made["id"])
        assert endpoints.signing_secrets(e, runtime.secret_key, utcnow() + timedelta(hours=24, seconds=1)) == [new]
        e.previous_secret_expires_at = utcnow() - timedelta(seconds=1)
        uow.commit()
    payout(m)
    sent = sender.sent[-1]
    assert len(signatures(sent.headers["Soxara-Signature"])[1]) == 1 and signed_by(sent, new)
    assert not signed_by(sent, made["signing_secret"])


def test_events_list_filter_pages_and_redeliver(client, runtime, sender):
    _, m = shop(client, runtime)
    made = add_endpoint(m, events=["transfer.created"])
    ids = [payout(m, 100 + i) for i in range(5)]
    listed = m.get("/v1/events", limit=2).get_json()["data"]
    assert len(listed["items"]) == 2 and listed["has_more"] is True
    seen = [e["id"] for e in listed["items"]]
    while listed["has_more"]:
        listed = m.get("/v1/events", limit=2, cursor=listed["next_cursor"]).get_json()["data"]
        seen += [e["id"] for e in listed["items"]]
    assert seen == sorted(seen, reverse=True) and len(seen) == 5
    assert [e["data"]["object"]["id"] for e in m.get("/v1/events").get_json()["data"]["items"]] == ids[::-1]
    assert m.get("/v1/events", type="transfer.claimed").get_json()["data"]["items"] == []
    assert len(m.get("/v1/events", type="transfer.created").get_json()["data"]["items"]) == 5
    later = (utcnow() + timedelta(minutes=1)).isoformat()
    assert m.get("/v1/events", created_after=later).get_json()["data"]["items"] == []
    assert len(m.get("/v1/events", created_before=later).get_json()["data"]["items"]) == 5
    for bad in ({"type": "nope"}, {"created_after": "yesterday"}, {"limit": 0}, {"cursor": "zzz"}):
        assert m.get("/v1/events", **bad).status_code == 422, bad

    evt = seen[0]
    before = len(sender.sent)
    r = m.post(f"/v1/events/{evt}/redeliver")
    assert r.status_code == 202, r.get_json()
    got = r.get_json()["data"]
    assert len(sender.sent) == before + 1 and json.loads(sender.sent[-1].body)["id"] == evt
    detail = m.get(f"/v1/events/{evt}").get_json()["data"]
    assert detail["deliveries"][0]["attempts"] == 2 and len(detail["delivery_attempts"]) == 2
    assert got["id"] == evt
    # no endpoint listening any more: refused, nothing sent
    m.delete(f"/v1/webhook-endpoints/{made['id']}")
    r = m.post(f"/v1/events/{evt}/redeliver", idem="r2")
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "INVALID_STATE"
    assert m.get("/v1/events/evt_0000000000000000000000000").status_code == 404


def test_a_failing_endpoint_is_retried_later_and_holds_back_nothing(client, runtime, sender):
    _, m = shop(client, runtime)
    add_endpoint(m)
    sender.answer = lambda s: Delivery(500, 3, "down for maintenance")
    first = payout(m)
    second = payout(m)
    assert len(sender.sent) == 2  # the first failed, was scheduled for a retry, and the second went
    with runtime.uow() as uow:
        rows = uow.session.query(deliveries.WebhookDelivery).order_by(deliveries.WebhookDelivery.seq).all()
        assert [(d.status, d.attempts) for d in rows] == [("pending", 1), ("pending", 1)]
        wait = (rows[0].next_attempt_at - rows[0].last_attempt_at).total_seconds()
        assert 24 <= wait <= 36  # 30 s, give or take the jitter
    # the sweep takes the retries when they are due (brought forward: the clock is real)
    from workers.scheduled import tick

    sender.answer = lambda s: Delivery(204, 1)
    with runtime.uow() as uow:
        for d in uow.session.query(deliveries.WebhookDelivery):
            d.next_attempt_at = utcnow() - timedelta(seconds=1)
        uow.commit()
    tick(runtime)
    with runtime.uow() as uow:
        rows = uow.session.query(deliveries.WebhookDelivery).all()
        assert {(d.status, d.attempts) for d in rows} == {("succeeded", 2)}
    assert [json.loads(s.body)["data"]["object"]["id"] for s in sender.sent] == [first, second, first, second]
