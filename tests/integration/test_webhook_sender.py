"""The webhook sender: the real one (workers/webhook_sender.py) against HTTP servers on this
machine, and the recording sandbox (core/webhooks/sender.py)."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core.webhooks.sender import ANSWER_BYTES, Delivery, RecordingSender
from tests.conftest import closed_port
from workers.webhook_sender import HttpWebhookSender


class Endpoint:
    """A merchant's endpoint on 127.0.0.1: `behaviour(handler)` answers each request; every
    request is kept in `seen` as (path, headers, body)."""

    def __init__(self, behaviour):
        self.seen: list[tuple[str, dict, bytes]] = []
        self.release = threading.Event()  # ends any answer still being held back
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                endpoint.seen.append((self.path, dict(self.headers), body))
                behaviour(self, endpoint)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint(request):
    made = []

    def make(behaviour):
        made.append(Endpoint(behaviour))
        return made[-1]

    yield make
    for e in made:
        e.close()


def answer(status: int, body: bytes = b"", **headers):
    def behave(h, _endpoint):
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
    return behave


def test_a_2xx_is_delivered_with_its_status_latency_and_the_first_bytes_of_the_answer(endpoint):
    e = endpoint(answer(200, b"thanks"))
    d = HttpWebhookSender().send(e.url + "/hooks?x=1", {"Soxara-Signature": "t=1,v1=ab"}, b'{"id":"evt_1"}', 5)
    assert (d.status, d.answer, d.error, d.ok) == (200, "thanks", None, True)
    assert 0 <= d.latency_ms < 5000
    ((path, headers, body),) = e.seen
    assert (path, body) == ("/hooks?x=1", b'{"id":"evt_1"}')
    assert headers["Soxara-Signature"] == "t=1,v1=ab" and headers["Content-Type"] == "application/json"


def test_only_the_first_bytes_of_a_long_answer_are_kept(endpoint):
    e = endpoint(answer(500, b"x" * (ANSWER_BYTES * 10)))
    d = HttpWebhookSender().send(e.url, {}, b"{}", 5)
    assert (d.status, len(d.answer), d.ok) == (500, ANSWER_BYTES, False)


def test_a_redirect_is_an_answer_not_followed(endpoint):
    e = endpoint(lambda h, ep: answer(302, Location=ep.url + "/elsewhere")(h, ep) if h.path == "/" else
                 answer(200)(h, ep))
    d = HttpWebhookSender().send(e.url + "/", {}, b"{}", 5)
    assert (d.status, d.ok) == (302, False)
    assert [path for path, _, _ in e.seen] == ["/"], "the Location was never asked for"


def test_the_timeout_is_hard_even_against_an_answer_dripping_a_byte_at_a_time(endpoint):
    """A socket timeout bounds each read; an endpoint that never pauses that long between
    bytes would hold a delivery (and a worker) for as long as it liked."""
    def drip(h, ep):
        h.send_response(200)
        h.send_header("Content-Length", "1000")
        h.end_headers()
        for _ in range(1000):
            if ep.release.wait(0.05):
                return
            try:
                h.wfile.write(b"x")
                h.wfile.flush()
            except OSError:
                return

    e = endpoint(drip)
    started = time.monotonic()
    d = HttpWebhookSender().send(e.url, {}, b"{}", 0.5)
    assert time.monotonic() - started < 3
    assert d.status is None and d.error.startswith("timeout") and not d.ok


def test_an_endpoint_that_does_not_answer_times_out(endpoint):
    e = endpoint(lambda h, ep: ep.release.wait(30))
    d = HttpWebhookSender().send(e.url, {}, b"{}", 0.3)
    assert d.status is None and d.error.startswith("timeout")


def test_a_refused_connection_and_a_url_that_is_not_http_are_outcomes_not_exceptions():
    refused = HttpWebhookSender().send(f"http://127.0.0.1:{closed_port()}/", {}, b"{}", 2)
    assert refused.status is None and "ConnectionRefused" in refused.error
    assert HttpWebhookSender().send("file:///etc/passwd", {}, b"{}", 2).error == "not an http(s) URL"


def test_the_recording_sender_keeps_what_it_was_given_and_answers_as_told():
    r = RecordingSender()
    assert r.send("https://example.test/h", {"A": "1"}, b"{}", 10).ok
    failing = RecordingSender(answer=lambda sent: Delivery(503, 1, "busy"))
    assert failing.send("https://example.test/h", {}, b"{}", 10).status == 503
    assert [(s.url, s.headers, s.body, s.timeout) for s in r.sent] == [("https://example.test/h", {"A": "1"}, b"{}", 10)]
