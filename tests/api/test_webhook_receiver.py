"""Deliveries to real receivers on loopback, through the real HTTP sender: the receiver
example of docs/webhooks.md, run as written, and receivers that misbehave."""

from __future__ import annotations

import json
import re
import socket
import struct
import threading
import time
import tracemalloc
from datetime import timedelta
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select

from core.db import utcnow
from core.webhooks import deliveries, signature
from tests.api.test_webhooks import add_endpoint, payout, shop
from tests.integration import test_webhook_sender
from tests.integration.test_webhook_sender import answer
from workers.scheduled import tick

# Receivers on 127.0.0.1 with a behaviour each (the sender's own tests' fixture).
endpoint = test_webhook_sender.endpoint

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def receiver_example() -> dict:
    """The Python block under "## A receiver" in docs/webhooks.md, executed as a module."""
    text = DOC.read_text()
    section = text[text.index("## A receiver"):]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found is not None, "docs/webhooks.md has no receiver example"
    code = found.group(1)
    ns: dict = {"__name__": "soxara_receiver_example"}
    exec(compile(code, str(DOC), "exec"), ns)
    return ns


@pytest.fixture
def example():
    ns = receiver_example()
    ns["handled"] = []
    ns["handle"] = ns["handled"].append
    ns["requests"] = 0
    handler = ns["SoxaraWebhook"]

    class Counting(handler):
        def do_POST(self):
            ns["requests"] += 1
            super().do_POST()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Counting)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ns["url"] = f"http://127.0.0.1:{server.server_address[1]}/soxara/webhooks"
    yield ns
    server.shutdown()
    server.server_close()


def due_now(runtime) -> None:
    """Bring every pending retry forward to now (the clock in these tests is real)."""
    with runtime.uow() as uow:
        for d in uow.session.query(deliveries.WebhookDelivery).filter(
                deliveries.WebhookDelivery.next_attempt_at.is_not(None)):
            d.next_attempt_at = utcnow() - timedelta(seconds=1)
        uow.commit()


def attempts(runtime) -> list:
    a = deliveries.WebhookAttempt
    with runtime.uow() as uow:
        return uow.session.execute(select(a.succeeded, a.status_code, a.error, a.answer).order_by(a.seq)).all()


def test_the_documented_receiver_verifies_our_deliveries_and_handles_each_event_once(client, runtime, example):
    _, m = shop(client, runtime)
    made = add_endpoint(m, example["url"])
    example["SECRETS"] = [made["signing_secret"]]
    sent = [payout(m, 100 + i) for i in range(3)]
    assert [e["data"]["object"]["id"] for e in example["handled"]] == sent
    assert all(a.succeeded and a.status_code == 200 for a in attempts(runtime))

    # sent again: acknowledged, not handled twice
    evt = example["handled"][0]["id"]
    assert m.post(f"/v1/events/{evt}/redeliver").status_code == 202
    assert example["requests"] == 4 and len(example["handled"]) == 3

    # a rotation: the receiver that still holds only the old secret goes on verifying ...
    new = m.post(f"/v1/webhook-endpoints/{made['id']}/rotate-secret").get_json()["data"]["signing_secret"]
    payout(m)
    # ... and so does one that holds only the new
    example["SECRETS"] = [new]
    payout(m)
    assert len(example["handled"]) == 5 and all(a.succeeded for a in attempts(runtime))

    # a receiver with the wrong secret refuses (400): a failed attempt, retried, then delivered
    example["SECRETS"] = ["whsec_not_the_one"]
    last = payout(m)
    refused = attempts(runtime)[-1]
    assert (refused.succeeded, refused.status_code) == (False, 400)
    example["SECRETS"] = [new]
    due_now(runtime)
    tick(runtime)
    assert example["handled"][-1]["data"]["object"]["id"] == last and len(example["handled"]) == 6


def test_the_documented_receiver_refuses_old_and_forged_signatures():
    verify = receiver_example()["verify"]
    body, now = b'{"id":"evt_1"}', int(time.time())
    good = signature.header(["whsec_a"], now, body)
    assert verify(good, body, ["whsec_a"])
    assert verify(good, body, ["whsec_old", "whsec_a"])
    assert not verify(good, body, ["whsec_b"])
    assert not verify(good, body + b" ", ["whsec_a"])
    assert verify(good, body, ["whsec_a"], now=now + 299)
    assert not verify(good, body, ["whsec_a"], now=now + 301)
    assert not verify(signature.header(["whsec_a"], now - 301, body), body, ["whsec_a"])
    for junk in ("", "t=", "v1=abc", "t=x,v1=abc", f"t={now}", "garbage", f"t={now},v1"):
        assert not verify(junk, body, ["whsec_a"])
    assert verify(signature.header(["whsec_new", "whsec_a"], now, body), body, ["whsec_a"])


# --- receivers that misbehave ------------------------------------------------------------

def hang(h, ep):
    ep.release.wait(30)


def fail_500(h, ep):
    answer(500, b"Internal Server Error")(h, ep)


def redirect(h, ep):
    answer(302, Location=ep.url + "/elsewhere")(h, ep)


def reset(h, ep):
    h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    h.connection.close()
    h.close_connection = True
    h.wfile = h.rfile = _Nothing()


class _Nothing:
    def write(self, _b):
        return 0

    def flush(self):
        pass

    def readline(self, *_a):
        return b""

    def close(self):
        pass


FIFTY_MB = 50 * 1024 * 1024


def huge(h, ep, status=500):
    h.send_response(status)
    h.send_header("Content-Length", str(FIFTY_MB))
    h.end_headers()
    chunk = b"x" * 65536
    try:
        for _ in range(FIFTY_MB // len(chunk)):
            h.wfile.write(chunk)
    except OSError:
        pass  # the sender hung up after the first bytes


@pytest.mark.parametrize("behaviour, status, error", [
    (hang, None, "timeout"),
    (fail_500, 500, None),
    (redirect, 302, None),
    (reset, None, "Connection"),
    (huge, 500, None),
])
def test_a_receiver_that_misbehaves_is_a_failed_attempt_retried_until_delivered(
        client, runtime, endpoint, monkeypatch, behaviour, status, error):
    monkeypatch.setattr(deliveries, "TIMEOUT", 1.0)
    current = [behaviour]
    e = endpoint(lambda h, ep: current[0](h, ep))
    _, m = shop(client, runtime)
    add_endpoint(m, e.url + "/")
    tracemalloc.start()
    started = time.monotonic()
    tr = payout(m)
    took = time.monotonic() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert took < 5, "a delivery is bounded by its timeout"
    [first] = attempts(runtime)
    assert not first.succeeded and first.status_code == status, first.error
    if error:
        assert error in (first.error or ""), first.error
    assert len(first.answer) <= 1024
    assert peak < 8 * 1024 * 1024, f"memory stays bounded ({peak} bytes at the peak)"
    with runtime.uow() as uow:
        [d] = uow.session.query(deliveries.WebhookDelivery).all()
        assert (d.status, d.attempts) == ("pending", 1) and d.next_attempt_at > utcnow()
        uow.session.expunge_all()
    if behaviour is redirect:
        assert [path for path, _, _ in e.seen] == ["/"], "the redirect was not followed"

    # the receiver is mended: the retry delivers, nothing is lost
    current[0] = answer(200, b"ok")
    e.release.set()
    due_now(runtime)
    tick(runtime)
    got = attempts(runtime)
    assert [a.succeeded for a in got][-1] is True
    bodies = [json.loads(body) for _, _, body in e.seen]
    assert bodies[-1]["data"]["object"]["id"] == tr and bodies[-1]["id"] == bodies[0]["id"]
    with runtime.uow() as uow:
        [d] = uow.session.query(deliveries.WebhookDelivery).all()
        assert (d.status, d.next_attempt_at) == ("succeeded", None)
        uow.session.expunge_all()


def test_a_2xx_with_a_50_mb_answer_is_delivered_reading_only_its_first_bytes(client, runtime, endpoint):
    e = endpoint(lambda h, ep: huge(h, ep, status=200))
    _, m = shop(client, runtime)
    add_endpoint(m, e.url + "/")
    tracemalloc.start()
    payout(m)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    [a] = attempts(runtime)
    assert (a.succeeded, a.status_code, len(a.answer)) == (True, 200, 1024)
    assert peak < 8 * 1024 * 1024, peak
