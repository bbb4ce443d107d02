"""The real webhook sender: one HTTP POST, no redirects followed, a hard timeout.

Outside core (core makes no HTTP calls). The standard library's http.client: it never
follows a redirect by itself, and nothing else in the project needs an HTTP client
library. A socket timeout alone bounds each read, not the whole exchange (an endpoint
that drips a byte a second would hold a delivery for ever), so a timer shuts the
connection at the deadline: `timeout` bounds connecting, sending and reading together
(name resolution excepted: the system resolver has no timeout to give).
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit

from core.webhooks.sender import ANSWER_BYTES, Delivery

USER_AGENT = "Soxara-Webhooks/1.0"


class HttpWebhookSender:
    def __init__(self) -> None:
        self._tls = ssl.create_default_context()

    def send(self, url: str, headers: dict[str, str], body: bytes, timeout: float) -> Delivery:
        started = time.monotonic()

        def took() -> int:
            return int((time.monotonic() - started) * 1000)

        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return Delivery(None, 0, error="not an http(s) URL")
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout, context=self._tls)
        else:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        cutter = _Cutter()
        watchdog = threading.Timer(timeout, cutter.cut)
        watchdog.daemon = True
        watchdog.start()
        try:
            conn.connect()  # bounded by `timeout` itself
            # Held here: the connection lets go of its socket once an HTTP/1.0 answer begins.
            cutter.hold(conn.sock)
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            conn.request("POST", target, body=body, headers={
                "Content-Type": "application/json", "User-Agent": USER_AGENT, **headers})
            resp = conn.getresponse()
            answer = resp.read(ANSWER_BYTES)
            if cutter.done.is_set():  # cut off mid-answer: what was read ends early, silently
                raise TimeoutError
            return Delivery(resp.status, took(), answer.decode("utf-8", "replace"))
        except (OSError, http.client.HTTPException) as e:
            if cutter.done.is_set() or isinstance(e, TimeoutError):
                return Delivery(None, took(), error=f"timeout: no answer within {timeout:g} s")
            return Delivery(None, took(), error=f"{type(e).__name__}: {e}"[:300])
        finally:
            watchdog.cancel()
            conn.close()


class _Cutter:
    """Shuts the delivery's socket when its time is up, wherever the exchange then is."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None

    def hold(self, sock: socket.socket | None) -> None:
        with self._lock:
            self._sock = sock
            late = self.done.is_set()
        if late:
            raise TimeoutError("the deadline passed while connecting")

    def cut(self) -> None:
        with self._lock:
            self.done.set()
            sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed
