"""The database: engine, declarative base, and the unit of work every service runs in.

One business operation is one transaction. A unit of work that is left without
`commit()` rolls back, so every write is committed on purpose. Work that must only
happen once the transaction is durable (sending a message, enqueuing a job) is
registered with `after_commit` and never sees a row that was rolled back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import BigInteger, DateTime, MetaData, create_engine, event
from sqlalchemy.engine import CursorResult, Engine, Result
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def rowcount(result: Result) -> int:
    """Rows an UPDATE or DELETE touched (its result is a CursorResult at run time)."""
    return cast(CursorResult, result).rowcount


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on both PostgreSQL and SQLite (which drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None:
            if value.tzinfo is None:
                raise ValueError("naive datetime given to a UTC column")
            value = value.astimezone(UTC)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


# Minor units of money: 64-bit everywhere; SQLite's INTEGER is already 64-bit.
Money = BigInteger


def driver_url(url: str) -> str:
    """psycopg2 is the PostgreSQL driver we ship; SQLAlchemy 2.1 would default to psycopg 3."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg2://" + url[len(plain):]
    return url


def make_engine(url: str, **kw) -> Engine:
    url = driver_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kw
        )

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn, _record):
            # Let SQLAlchemy, not pysqlite, decide when transactions begin.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            # SQLite has one writer at a time. Taking the write lock when the transaction
            # begins (rather than upgrading a read lock later, which can fail with
            # "database is locked") serialises writers the way row locks do on PostgreSQL.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    kw.setdefault("pool_pre_ping", True)
    kw.setdefault("pool_size", 10)
    kw.setdefault("max_overflow", 20)
    return create_engine(url, **kw)


class UnitOfWork:
    """A transaction around one business operation.

    with runtime.uow() as uow:
        transfers.send(uow, ...)
        uow.commit()
    """

    def __init__(self, session_factory: sessionmaker):
        self._factory = session_factory
        self._session: Session | None = None
        self._after_commit: list[Callable[[], None]] = []

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("use the unit of work as a context manager: with runtime.uow() as uow")
        return self._session

    def __enter__(self) -> UnitOfWork:
        self._session = self._factory()
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.session.rollback()
        finally:
            self.session.close()

    def after_commit(self, fn: Callable[[], None]) -> None:
        self._after_commit.append(fn)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A part of the transaction that can fail alone: on an exception its writes are
        rolled back and the after-commit work it registered is dropped with them (a
        refused transfer must not send its "you received" message), then the exception
        goes on to the caller, whose own work still commits."""
        queued = len(self._after_commit)
        try:
            with self.session.begin_nested():
                yield
        except BaseException:
            del self._after_commit[queued:]
            raise

    def commit(self) -> None:
        self.session.commit()
        hooks, self._after_commit = self._after_commit, []
        for fn in hooks:
            fn()

    def rollback(self) -> None:
        self.session.rollback()
        self._after_commit = []

    @property
    def is_postgres(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"
