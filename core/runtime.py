"""Everything a service call needs from the outside world, built once per process.

The web app, the bot, the workers and the CLI all hold one `Runtime`: settings, the
database, the job queue, the message transport and the payment rails. Nothing here
is global, so tests can build as many as they like.
"""

from __future__ import annotations

from functools import cached_property

from sqlalchemy.orm import sessionmaker

from core.config import Settings
from core.db import UnitOfWork, make_engine
from core.idempotency import IdempotencyStore
from core.jobs import JobQueue
from core.rails import Rails, rails_for


class Runtime:
    def __init__(self, settings: Settings, jobs: JobQueue | None = None):
        self.settings = settings
        self.engine = make_engine(settings.database_url)
        self.session_factory = sessionmaker(self.engine, expire_on_commit=False)
        self.idempotency = IdempotencyStore(self.session_factory, settings.secret_key)
        self._jobs = jobs

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.session_factory)

    @property
    def jobs(self) -> JobQueue:
        if self._jobs is None:
            raise RuntimeError("this runtime has no job queue")
        return self._jobs

    @jobs.setter
    def jobs(self, q: JobQueue) -> None:
        self._jobs = q

    @cached_property
    def rails(self) -> Rails:
        """Which rail carries each method's money in each mode (core/rails)."""
        return rails_for(self.settings)

    @cached_property
    def secret_key(self) -> str:
        return self.settings.secret_key

    def dispose(self) -> None:
        # An in-process job runner stops first (after the job it is running): its thread
        # would otherwise go on using a database that may be gone by then.
        stop = getattr(self._jobs, "stop", None)
        if stop is not None:
            stop()
        self.engine.dispose()
