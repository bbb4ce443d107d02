"""The real webhook sender: one HTTP POST, no redirects followed, a hard timeout.

Outside core (core makes no HTTP calls). The standard library's http.client: it never
follows a redirect by itself, and nothing else in the project needs an HTTP client
library. A socket timeout alone bounds each read, not the whole exchange (an endpoint
that drips a byte a second would hold a delivery for ever), so a timer shuts the
connection at the deadline: `timeout` bounds connecting, sending and reading together
(name resolution excepted: the system resolver has no timeout to give).

A live endpoint's delivery (`public_only`) resolves the host itself, refuses it if any
address it resolves to is inside a network (core/webhooks/urls.py), and connects to the
address it checked, with the name kept for the Host header and TLS: a name that changes
its answer between the check and the connection (DNS rebinding) gains nothing.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit

from core.webhooks.sender import ANSWER_BYTES, Delivery
from core.webhooks.urls import refusal

USER_AGENT = "Soxara-Webhooks/1.0"


class HttpWebhookSender:
    def __init__(self) -> None:
        self._tls = ssl.create_default_context()

    def send(self, url: str, headers: dict[str, str], body: bytes, timeout: float, *,
             public_only: bool = False) -> Delivery:
        started = time.monotonic()

        def took() -> int:
            return int((time.monotonic() - started) * 1000)

        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return Delivery(None, 0, error="not an http(s) URL")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        address = None
        if public_only:
            address, why = _public_address(parts.hostname, port)
            if address is None:
                return Delivery(None, took(), error=why)
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            conn = _HTTPSConnection(parts.hostname, port, timeout=timeout, context=self._tls, address=address)
        else:
            conn = _HTTPConnection(parts.hostname, port, timeout=timeout, address=address)
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


def _public_address(host: str, port: int) -> tuple[str | None, str]:
    """The first address `host` resolves to, if none of them is inside a network; else
    None and why."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as e:
        return None, f"cannot resolve {host}: {e}"[:300]
    addresses = [str(info[4][0]) for info in infos]
    for a in addresses:
        why = refusal(a)
        if why is not None:
            return None, f"refused: {host} resolves to {a}, {why}; live endpoints must be on the internet"
    if not addresses:
        return None, f"cannot resolve {host}"
    return addresses[0], ""


class _HTTPConnection(http.client.HTTPConnection):
    """Connects to `address` when given (a checked address of the host), else the host."""

    def __init__(self, host: str, port: int, *, address: str | None = None, **kw):
        super().__init__(host, port, **kw)
        self._address = address

    def connect(self) -> None:
        if self._address is None:
            return super().connect()
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _HTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, *, address: str | None = None, context: ssl.SSLContext, **kw):
        super().__init__(host, port, context=context, **kw)
        self._address = address
        self._tls_context = context

    def connect(self) -> None:
        if self._address is None:
            return super().connect()
        sock = socket.create_connection((self._address, self.port), self.timeout)
        # The name, not the address, for SNI and the certificate check.
        self.sock = self._tls_context.wrap_socket(sock, server_hostname=self.host)


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
