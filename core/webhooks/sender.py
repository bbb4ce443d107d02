"""What sends one webhook delivery: the interface, and the recording sandbox for tests.

The real sender (an HTTP POST, workers/webhook_sender.py) lives outside core, which never
makes HTTP calls itself; the runtime holds whichever the builder chose (`rt.webhooks`).
A sender only sends: it neither signs (the caller puts `Soxara-Signature` in `headers`)
nor retries (the caller records the attempt and asks core.retry when to try again). It
never follows a redirect: a 3xx is an answer like any other that is not 2xx, so a
delivery goes only where the merchant's endpoint says, and it never raises for what the
other side did: every outcome is a `Delivery`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

# How much of the endpoint's answer a delivery keeps (shown to the merchant to debug).
ANSWER_BYTES = 1024


@dataclass(frozen=True)
class Delivery:
    status: int | None  # the HTTP status; None when no answer came
    latency_ms: int
    answer: str = ""  # the first ANSWER_BYTES of the body, decoded leniently
    error: str | None = None  # why there is no answer: "timeout", a refused connection…

    @property
    def ok(self) -> bool:
        """2xx within the timeout: delivered (CONTRACT.md section 3)."""
        return self.error is None and self.status is not None and 200 <= self.status < 300


class WebhookSender(Protocol):
    def send(self, url: str, headers: dict[str, str], body: bytes, timeout: float, *,
             public_only: bool = False) -> Delivery:
        """POST `body` to `url` with `headers`, giving up after `timeout` seconds in all.
        `public_only` (live endpoints): refuse, without connecting, a host that resolves
        to any address core.webhooks.urls.refusal refuses, and connect only to an
        address that was checked."""
        ...


@dataclass(frozen=True)
class Sent:
    url: str
    headers: dict[str, str]
    body: bytes
    timeout: float
    public_only: bool = False


@dataclass
class RecordingSender:
    """Sends nothing: keeps each delivery in `sent` and answers `answer(sent)` (200 by
    default), for tests and for a process that must not call out."""

    answer: Callable[[Sent], Delivery] = lambda sent: Delivery(200, 0)
    sent: list[Sent] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def send(self, url: str, headers: dict[str, str], body: bytes, timeout: float, *,
             public_only: bool = False) -> Delivery:
        s = Sent(url, dict(headers), bytes(body), timeout, public_only)
        with self._lock:
            self.sent.append(s)
        return self.answer(s)
