"""The database: engine, declarative base, and the unit of work every service runs in.

One business operation is one transaction. A unit of work that is left without
`commit()` rolls back, so every write is committed on purpose. Work that must only
happen once the transaction is durable (sending a message, enqueuing a job) is
registered with `after_commit` and never sees a row that was rolled back. Once COMMIT
has succeeded nothing raises into the caller: the operation happened and its caller
must say so; an after-commit step that fails is logged, and what it would have started
is left to the sweeps (core/jobs.py says why that loses nothing).
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from sqlalchemy import (
    BigInteger,
    DateTime,
    Integer,
    MetaData,
    bindparam,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import Connection, CursorResult, Engine, Result
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from core.errors import NotFound

log = logging.getLogger("soxara.db")

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
# An arrival-order key (postings, outbound messages): SQLite only autoincrements an
# INTEGER PRIMARY KEY; PostgreSQL wants 64 bits.
Seq = BigInteger().with_variant(Integer(), "sqlite")


def driver_url(url: str) -> str:
    """psycopg2 is the PostgreSQL driver we ship; SQLAlchemy 2.1 would default to psycopg 3."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg2://" + url[len(plain):]
    return url


# Seconds libpq may take to connect. Its default is to wait forever for a server that
# takes the connection and never answers; a request should be a 503 instead.
PG_CONNECT_TIMEOUT = 5


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
    kw.setdefault("pool_size", 10)
    kw.setdefault("max_overflow", 20)
    if "connect_timeout" not in url:
        kw["connect_args"] = {"connect_timeout": PG_CONNECT_TIMEOUT, **kw.get("connect_args", {})}
    engine = create_engine(url, **kw)
    _no_connections_across_fork(engine)
    _ping_idle_connections(engine)
    _install_deferred_writes(engine)
    return engine


_OWNER_PID = "soxara_pid"


def _no_connections_across_fork(engine: Engine) -> None:
    """A process forked with connections in its pool (an RQ work horse, a prefork server
    whose app touched the database first) must not use them: both processes would talk
    over one socket to one server session, and this one's prepared statements and
    deferred writes would be the other's. The child drops them unclosed (closing would
    end the parent's session) and connects anew: SQLAlchemy's own recipe."""

    @event.listens_for(engine, "connect")
    def _owner(_dbapi_conn, record):
        record.info[_OWNER_PID] = os.getpid()

    @event.listens_for(engine, "checkout")
    def _not_inherited(_dbapi_conn, record, proxy):
        if record.info.get(_OWNER_PID, os.getpid()) != os.getpid():
            record.dbapi_connection = proxy.dbapi_connection = None
            raise DisconnectionError("a connection made by the parent process, before the fork")


# A pooled connection idle longer than this is pinged before it is handed out.
PING_IDLE_AFTER = 5.0  # seconds
_IDLE_SINCE = "soxara_idle_since"


def _ping_idle_connections(engine: Engine) -> None:
    """Pessimistic disconnect handling, for connections that were idle: SQLAlchemy's
    `pool_pre_ping` spends a round trip on every checkout, and under load a connection
    goes back out within milliseconds of its last statement. One that died in between
    (PostgreSQL restarted in those seconds) fails its first statement, and SQLAlchemy
    then invalidates the pool's connections, so the next checkouts reconnect."""

    @event.listens_for(engine.pool, "checkin")
    def _idle_from(_dbapi_conn, record):
        if record is not None:
            record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _ping_if_idle(dbapi_conn, record, _proxy):
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is None or time.monotonic() - idle_since < PING_IDLE_AFTER:
            return  # new, or back from work just now
        try:
            cur = dbapi_conn.cursor()
            try:
                cur.execute("SELECT 1")
            finally:
                cur.close()
        except Exception as e:  # noqa: BLE001 - any failure: the pool reconnects
            raise DisconnectionError("a pooled connection failed its ping") from e


# --- the database unavailable ----------------------------------------------------------

# SQLSTATEs of a transaction PostgreSQL ended so that others could go on (a deadlock's
# victim, a serialization failure): nothing of it committed, and run again it may succeed.
_CONFLICT_SQLSTATES = ("40P01", "40001")
# SQLSTATE classes of a server that cannot serve now: 08 connection exception, 53
# insufficient resources (too many connections, disk full), 57 operator intervention
# (shutting down, starting up, a statement cancelled by its timeout).
_DOWN_SQLSTATE_CLASSES = ("08", "53", "57")
_SQLITE_BUSY = ("database is locked", "database table is locked", "database is busy")


# Seconds a client should wait before retrying what the database could not serve, by
# `database_unavailable`'s reason: a conflict's victim may pass at once; a database that is
# down needs longer.
RETRY_AFTER = {"conflict": 1, "down": 5}


def database_unavailable(e: BaseException) -> str | None:
    """Why the database could not serve a transaction, when that is what `e` says:
    "conflict" (a deadlock's victim, a serialization failure, SQLite's file held by
    another writer: running it again may well succeed) or "down" (unreachable, the
    connection lost, no pooled connection free in time, the server shutting down).
    None for anything else, which is a bug.

    Either way the transaction did not commit, except when the connection was lost during
    COMMIT itself, where nobody can tell: a retry with the same idempotency key then
    replays the outcome if it did.
    """
    if isinstance(e, PoolTimeout):
        return "down"
    if not isinstance(e, DBAPIError):
        return None
    sqlstate = getattr(e.orig, "pgcode", None)
    if sqlstate in _CONFLICT_SQLSTATES:
        return "conflict"
    if e.connection_invalidated or (sqlstate or "")[:2] in _DOWN_SQLSTATE_CLASSES:
        return "down"
    if isinstance(e.orig, sqlite3.Error):
        busy = isinstance(e.orig, sqlite3.OperationalError) and any(m in str(e.orig) for m in _SQLITE_BUSY)
        return "conflict" if busy else None  # other OperationalErrors: no such table…, bugs
    if sqlstate is None and isinstance(e, (OperationalError, InterfaceError)):
        return "down"  # psycopg2 could not connect, or the server went away: no SQLSTATE
    return None


# --- hot statements ---------------------------------------------------------------------
#
# The API's money path (a transfer) was bound by Python building SQLAlchemy statements and
# by PostgreSQL parsing and planning each one (docs/bench-transfers.md). A `Statement` is
# written once as SQL with :named parameters. On PostgreSQL it is PREPAREd once per
# connection (parsed and planned once, then only EXECUTEd), and writes a unit of work
# `defer`s travel together in the round trip of its next read or of its commit. On SQLite
# (no network, one writer) each simply runs at once through SQLAlchemy.

# Constraints whose violation is a refusal of the operation, not a bug: constraint name ->
# the domain error to raise instead (core.wallets.ledger's no-overdraft rule: InsufficientFunds).
# A deferred write is refused where its batch is sent: the next read, savepoint or commit.
_REFUSALS: dict[str, Callable[[], Exception]] = {}


def refuse_on_violation(constraint: str, error: Callable[[], Exception]) -> None:
    """Raise `error()` wherever a statement violates the constraint named `constraint`."""
    _REFUSALS[constraint] = error


def _refusal(e: BaseException) -> Exception | None:
    """The domain error a driver's constraint violation stands for, if any."""
    orig = getattr(e, "orig", e)
    name = getattr(getattr(orig, "diag", None), "constraint_name", None)  # psycopg2
    if name is None:  # SQLite: "CHECK constraint failed: <name>"
        message = str(orig)
        name = message.rpartition("constraint failed: ")[2].strip() if "constraint failed: " in message else None
    make = _REFUSALS.get(name or "")
    return make() if make is not None else None


_BIND = re.compile(r"(?<![:\w\\]):(\w+)(?!:)")  # SQLAlchemy text()'s own rule for :name
_PREPARED = "soxara_prepared"  # names PREPAREd on a DBAPI connection (its pool info dict)
_DEFERRED = "soxara_deferred"  # (statement, params) waiting for the connection's next trip


class Statement:
    """One hot SQL statement. `types` give SQLAlchemy types to parameters that need one
    on SQLite (UTC datetimes, stored as SQLAlchemy stores them)."""

    _names = itertools.count(1)

    def __init__(self, sql: str, *, lock: str = "", **types: Any):
        """`lock`: a row-locking clause (FOR UPDATE…) for PostgreSQL; SQLite's
        transaction already holds its only write lock."""
        self.sql = " ".join(sql.split())
        self.name = f"soxara_{next(self._names)}"
        params = list(dict.fromkeys(_BIND.findall(self.sql)))
        numbered = {p: f"${i}" for i, p in enumerate(params, 1)}
        self.pg_prepare = f"PREPARE {self.name} AS " + _BIND.sub(lambda m: numbered[m.group(1)], self.sql) + (
            f" {lock}" if lock else "")
        self.pg_execute = f"EXECUTE {self.name}" + (
            "(" + ", ".join(f"%({p})s" for p in params) + ")" if params else "")
        self.text = text(self.sql).bindparams(*(bindparam(k, type_=t) for k, t in types.items()))

    def __repr__(self) -> str:
        return f"<Statement {self.name}: {self.sql[:60]}>"


def _pg_send(conn: Connection, last: tuple[Statement, dict] | None) -> list[Any]:
    """Send the connection's deferred writes, and `last` after them, in one round trip;
    the rows `last` returns."""
    fairy = conn.connection
    queue: list = fairy.info.get(_DEFERRED) or []
    batch = queue + [last] if last is not None else queue
    fairy.info[_DEFERRED] = []
    if not batch:
        return []
    prepared: set = fairy.info.setdefault(_PREPARED, set())
    dbapi_conn = fairy.dbapi_connection
    assert dbapi_conn is not None
    cur = dbapi_conn.cursor()
    try:
        for stmt, _ in batch:
            if stmt.name not in prepared:
                # A round trip of its own, once per connection: a PREPARE survives a
                # later rollback, so it is known to exist once this returns.
                cur.execute(stmt.pg_prepare)
                prepared.add(stmt.name)
        cur.execute(b";".join(cur.mogrify(stmt.pg_execute, params) for stmt, params in batch))
        return list(cur.fetchall()) if last is not None and cur.description is not None else []
    except conn.dialect.loaded_dbapi.Error as e:
        # As SQLAlchemy would raise it (IntegrityError, OperationalError…), and a dead
        # connection is invalidated so the pool never hands it out again. The message
        # names the statements, not the values (message bodies, hashes) they carried.
        refusal = _refusal(e)
        if refusal is not None:
            raise refusal from e
        invalidated = conn.dialect.is_disconnect(e, dbapi_conn, cur)
        if invalidated:
            fairy.invalidate(e)
        raise DBAPIError.instance("; ".join(stmt.sql for stmt, _ in batch)[:1000], None, e,
                                  conn.dialect.loaded_dbapi.Error,
                                  connection_invalidated=invalidated) from e
    finally:
        cur.close()


def _install_deferred_writes(engine: Engine) -> None:
    """Whatever SQLAlchemy is about to send on a connection goes after the writes deferred
    on it, so reads, savepoints and the commit see them; a rollback drops them."""

    def flush(conn, *_args):
        if conn.connection.info.get(_DEFERRED):
            _pg_send(conn, None)

    def drop(conn, *_args):
        conn.connection.info[_DEFERRED] = []

    for name in ("before_cursor_execute", "savepoint", "release_savepoint", "commit"):
        event.listen(engine, name, flush)
    for name in ("rollback", "rollback_savepoint"):
        event.listen(engine, name, drop)

    @event.listens_for(engine.pool, "checkin")
    def _checkin(_dbapi_conn, record):
        # Never carried into another transaction: a connection goes back to the pool
        # after a commit or a rollback, both of which empty the queue; this is the belt.
        if record is not None and record.info.get(_DEFERRED):
            record.info[_DEFERRED] = []


def _sqlite_execute(conn: Connection, stmt: Statement, params: dict[str, Any]) -> CursorResult:
    try:
        return cast(CursorResult, conn.execute(stmt.text, params))
    except DBAPIError as e:
        refusal = _refusal(e)
        if refusal is not None:
            raise refusal from e
        raise


_Row = TypeVar("_Row")


class UnitOfWork:
    """A transaction around one business operation.

    with runtime.uow() as uow:
        transfers.send(uow, ...)
        uow.commit()
    """

    def __init__(self, session_factory: sessionmaker, jobs: Any = None):
        self._factory = session_factory
        # The runtime's job queue, for what core must prompt after any commit that wrote
        # its rows (the event relay: core.events.record), whoever the caller is.
        self.jobs = jobs
        self._session: Session | None = None
        self._after_commit: list[Callable[[], None]] = []
        # What holds only until this transaction ends (the rows it has locked, by the
        # services that need to know): emptied by commit and rollback.
        self.held: dict[str, set[str]] = {}
        bind = session_factory.kw.get("bind")
        self._postgres = bind is not None and bind.dialect.name == "postgresql"
        self._conn: Connection | None = None
        self._nested: object | None = None

    def get(self, model: type[_Row], key: Any, *, what: str) -> _Row:
        """The `model` row with this primary key, or NotFound ("no such <what>"), the answer
        an id nobody holds and an id of someone else's get alike."""
        row = self.session.get(model, key)
        if row is None:
            raise NotFound(f"no such {what}")
        return row

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

    def run(self, stmt: Statement, params: dict[str, Any] | None = None) -> list[Any]:
        """Run `stmt` now (after any writes deferred before it) and return its rows."""
        self.session.flush()  # the ORM's pending rows first, as its autoflush would
        conn = self._connection()
        if self._postgres:
            return _pg_send(conn, (stmt, params or {}))
        result = _sqlite_execute(conn, stmt, params or {})
        return list(result) if result.returns_rows else []

    def defer(self, stmt: Statement, params: dict[str, Any]) -> None:
        """Write with `stmt` before the next read or the commit, whichever comes first.

        For writes whose outcome nothing reads back: on PostgreSQL they share the round
        trip of what follows them. A write that fails raises there, not here.
        """
        self.session.flush()  # keep program order: the ORM's pending rows go before this one
        conn = self._connection()
        if self._postgres:
            conn.connection.info.setdefault(_DEFERRED, []).append((stmt, params))
        else:
            _sqlite_execute(conn, stmt, params)

    def _connection(self) -> Connection:
        """The session's connection in this transaction (asking the session each time
        costs more than a hot statement's own work). Asked again inside a new savepoint:
        the session emits SAVEPOINT only when its connection is asked for."""
        conn, nested = self._conn, self.session.get_nested_transaction()
        if conn is None or conn.closed or conn.invalidated or nested is not self._nested:
            conn, self._nested = self.session.connection(), nested
            self._conn = conn
        return conn

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
                # Its deferred writes go now, inside it: one refused (an overdraft) rolls
                # back this savepoint alone, as a refusal raised in the body would.
                self.send_deferred()
        except BaseException:
            del self._after_commit[queued:]
            raise

    def send_deferred(self) -> None:
        """Send the writes deferred so far (and raise what they raise) now."""
        if self._postgres and self.session.in_transaction():
            _pg_send(self._connection(), None)

    def commit(self) -> None:
        self.send_deferred()  # fail here, before COMMIT, not inside it
        self.session.commit()
        self.held = {}
        hooks, self._after_commit = self._after_commit, []
        for fn in hooks:
            try:
                fn()
            except Exception:
                # Committed is committed: the caller answers with the outcome. The step's
                # work is on a row with a due time, which a sweep picks up (core/jobs.py).
                log.exception("an after-commit step failed; the commit stands, the sweeps take over")

    def rollback(self) -> None:
        self.session.rollback()
        self.held = {}
        self._after_commit = []

    @property
    def is_postgres(self) -> bool:
        return self._postgres
