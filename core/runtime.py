"""Everything a service call needs from the outside world, built once per process.

The web app, the bot, the workers and the CLI all hold one `Runtime`: settings, the
database, the job queue, and the outside services behind their interfaces (the message
transport, the payment rails, the billers, the webhook sender). Which implementation of each is live is decided from the
settings by one function, `workers.runtime.build_runtime`, for every process alike (it
lives outside core because the RQ queue and Twilio's transport may not be imported here).
A `Runtime` made directly has only the database: asking it for a service it was not given
is an error, never a silent sandbox. Nothing here is global, so tests can build as many
as they like.
"""

from __future__ import annotations

import logging
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.orm import sessionmaker

from core.billers import Billers
from core.config import Settings
from core.db import UnitOfWork, make_engine
from core.idempotency import IdempotencyStore
from core.jobs import JobQueue
from core.messaging.transports import MessageTransport
from core.rails import Rails
from core.webhooks.sender import WebhookSender

log = logging.getLogger("soxara.runtime")
T = TypeVar("T")


class Runtime:
    def __init__(self, settings: Settings, jobs: JobQueue | None = None, *,
                 rails: Rails | None = None, transport: MessageTransport | None = None,
                 billers: Billers | None = None, webhooks: WebhookSender | None = None):
        self.settings = settings
        self.engine = make_engine(settings.database_url)
        self.session_factory = sessionmaker(self.engine, expire_on_commit=False)
        self.idempotency = IdempotencyStore(self.session_factory, settings.secret_key)
        self._jobs = jobs
        self._rails = rails
        self._transport = transport
        self._billers = billers
        self._webhooks = webhooks

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.session_factory, self._jobs)

    @property
    def jobs(self) -> JobQueue:
        if self._jobs is None:
            raise RuntimeError("this runtime has no job queue")
        return self._jobs

    @jobs.setter
    def jobs(self, q: JobQueue) -> None:
        self._jobs = q

    @property
    def rails(self) -> Rails:
        """Which rail carries each method's money in each mode (core/rails)."""
        return _given(self._rails, "payment rails")

    @property
    def billers(self) -> Billers:
        """The billers bills are paid to, and the TIMM rail that pays them (core/billers)."""
        return _given(self._billers, "billers")

    @billers.setter
    def billers(self, billers: Billers) -> None:
        self._billers = billers

    @property
    def webhooks(self) -> WebhookSender:
        """What POSTs webhook deliveries to merchants' endpoints (core/webhooks/sender.py)."""
        return _given(self._webhooks, "webhook sender")

    @webhooks.setter
    def webhooks(self, sender: WebhookSender) -> None:
        self._webhooks = sender

    @property
    def transport(self) -> MessageTransport:
        """What hands WhatsApp messages to the world (core/messaging/transports.py)."""
        return _given(self._transport, "message transport")

    @transport.setter
    def transport(self, transport: MessageTransport) -> None:
        self._transport = transport

    def health(self) -> dict[str, str]:
        """Each dependency: "ok", or what is wrong with it. The database must answer a
        query; the job queue says for itself (Redis answers a ping; the in-process
        runner's thread is alive)."""
        try:
            with self.uow() as uow:
                uow.session.execute(text("SELECT 1"))
            database = "ok"
        except Exception:
            log.warning("health check: the database did not answer", exc_info=True)
            database = "unreachable"
        queue_health = getattr(self._jobs, "health", None)
        return {"database": database, "job_queue": queue_health() if queue_health else "ok"}

    @property
    def secret_key(self) -> str:
        return self.settings.secret_key

    def dispose(self) -> None:
        # An in-process job runner stops first (after the job it is running): its thread
        # would otherwise go on using a database that may be gone by then.
        stop = getattr(self._jobs, "stop", None)
        if stop is not None:
            stop()
        self.engine.dispose()


def _given(service: T | None, what: str) -> T:
    if service is None:
        raise RuntimeError(f"this runtime has no {what}: build it with workers.runtime.build_runtime")
    return service
