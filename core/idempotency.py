"""Idempotency records: one per (scope, key), so a retried operation runs at most once.

Everything happens inside the operation's own transaction. `claim` takes the key's lock
(on PostgreSQL a transaction-scoped advisory lock, tried without waiting: a copy that
finds it held is answered IDEMPOTENCY_IN_PROGRESS at once) and reads the key's record: a
stored outcome is replayed, another request's body is a conflict.

SQLite has one writer at a time, and an operation that judges a PIN or a login code
commits that try in a transaction of its own, which cannot begin while the request's
transaction holds the write lock. So there `claim` writes a `running` record and
commits it at once: a copy that arrives meanwhile finds it and is answered
IDEMPOTENCY_IN_PROGRESS (it would otherwise count a wrong PIN a second time). The
outcome replaces the record; an answer that is not stored, or a crash, gives the key back
(`release`); a record left `running` by a process that died is taken over after
RUNNING_STALE. `complete` writes the outcome with the
operation's effects, so they commit together or not at all: there is never an outcome
without its effects, and a process that dies mid-request leaves nothing behind to clean
up. The record's unique index is the last word: a copy that slipped past the lock (it
read before the first committed) fails on it at commit, rolls back and replays.

A refusal by the operation itself (INSUFFICIENT_FUNDS) rolls its effects back and is
stored by `store_refusal` in a transaction of its own.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    delete,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column, sessionmaker

from core.crypto import Sealer
from core.db import Base, Statement, UnitOfWork, UTCDateTime, rowcount, utcnow

LIFETIME = timedelta(hours=24)
RUNNING_STALE = timedelta(minutes=2)  # SQLite: longer than any request runs
class IdempotencyRecord(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("scope", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(120))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(10))  # running | done
    response_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The response body, sealed: it may hold a secret shown once (a freshly minted key).
    response_sealed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


_COLUMNS = "scope, key, fingerprint, attempt, status, response_status, response_sealed, created_at, expires_at"
_TYPES: dict[str, Any] = {"created_at": UTCDateTime(), "expires_at": UTCDateTime()}
# The key's lock and its record in one read. The lock id is 64 bits of a hash of the
# scope and key: two keys sharing one only means one waits for the other's answer.
_LOOKUP_LOCKED = Statement(
    "SELECT l.locked, k.id, k.fingerprint, k.status, k.response_status, k.response_sealed, "
    "k.expires_at <= :now FROM (SELECT pg_try_advisory_xact_lock(CAST(:lock AS BIGINT)) AS locked) l "
    "LEFT JOIN idempotency_keys k ON k.scope = :scope AND k.key = :key", now=UTCDateTime())
_RECORD = "TRUE, id, fingerprint, status, response_status, response_sealed, expires_at <= :now"
_OF_KEY = "FROM idempotency_keys WHERE scope = :scope AND key = :key"
_LOOKUP = Statement(f"SELECT {_RECORD} {_OF_KEY}", now=UTCDateTime())
_FORGET = Statement("DELETE FROM idempotency_keys WHERE id = :id")
_STORE = Statement(
    f"INSERT INTO idempotency_keys ({_COLUMNS}) VALUES (:scope, :key, :fingerprint, '', 'done', "
    ":response_status, :response_sealed, :created_at, :expires_at)", **_TYPES)
_STORE_UNLESS_TAKEN = Statement(_STORE.sql + " ON CONFLICT (scope, key) DO NOTHING RETURNING id", **_TYPES)
# SQLite's running records (see the module's docstring), each attempt known by a token.
_MARK_RUNNING = Statement(
    f"INSERT INTO idempotency_keys ({_COLUMNS}) VALUES (:scope, :key, :fingerprint, :attempt, 'running', "
    "NULL, NULL, :created_at, :expires_at)", **_TYPES)
_TAKE_OVER = Statement(
    "UPDATE idempotency_keys SET attempt = :attempt, fingerprint = :fingerprint, created_at = :now "
    "WHERE id = :id AND status = 'running' AND created_at <= :stale RETURNING id",
    now=UTCDateTime(), stale=UTCDateTime())
_FINISH = Statement(
    "UPDATE idempotency_keys SET status = 'done', response_status = :response_status, "
    "response_sealed = :response_sealed, created_at = :created_at, expires_at = :expires_at "
    "WHERE scope = :scope AND key = :key AND attempt = :attempt", **_TYPES)
_GIVE_BACK = Statement(f"DELETE {_OF_KEY} AND attempt = :attempt AND status = 'running'")
# The lookup's record, and whether a running one is stale.
_LOOKUP_RUNNING = Statement(f"SELECT {_RECORD}, created_at <= :stale {_OF_KEY}", now=UTCDateTime(),
                            stale=UTCDateTime())


def fingerprint(method: str, path: str, body) -> str:
    canon = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(f"{method} {path}\n{canon}".encode()).hexdigest()


def _lock_id(scope: str, key: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{scope}\n{key}".encode()).digest()[:8], "big", signed=True)


@dataclass
class Claim:
    """Outcome of claiming a key: run it, replay it, or refuse it."""

    outcome: str  # "run" | "replay" | "conflict" | "in_progress"
    scope: str = ""
    key: str = ""
    fingerprint: str = ""
    status: int | None = None
    body: bytes | None = None
    attempt: str = ""  # SQLite: this request's running record


class IdempotencyStore:
    def __init__(self, session_factory: sessionmaker, secret_key: str):
        self._factory = session_factory
        self._sealer = Sealer(secret_key)

    def claim(self, uow: UnitOfWork, scope: str, key: str, fp: str, now: datetime | None = None) -> Claim:
        """Take the key for the operation about to run in `uow`'s transaction."""
        now = now or utcnow()
        if not uow.is_postgres:
            return self._claim_sqlite(uow, scope, key, fp, now)
        rows = uow.run(_LOOKUP_LOCKED, {"lock": _lock_id(scope, key), "scope": scope, "key": key, "now": now})
        locked, rid, *_, expired = rows[0] if rows else (True, None, None, None, None, None, None)
        if rid is not None and expired:
            uow.defer(_FORGET, {"id": rid})  # 24 hours on: the key is free again
            rid = None
        if rid is not None:
            return self._stored(fp, rows[0])
        if not locked:
            return Claim("in_progress")
        return Claim("run", scope=scope, key=key, fingerprint=fp)

    def _claim_sqlite(self, uow: UnitOfWork, scope: str, key: str, fp: str, now: datetime) -> Claim:
        """Write this request's running record and commit it (see the module's docstring)."""
        attempt = secrets.token_hex(8)
        rows = uow.run(_LOOKUP_RUNNING, {"scope": scope, "key": key, "now": now, "stale": now - RUNNING_STALE})
        if rows:
            _, rid, _, status, _, _, expired, stale = rows[0]
            if expired:
                uow.defer(_FORGET, {"id": rid})  # 24 hours on: the key is free again
            elif status == "running" and stale and uow.run(_TAKE_OVER, {
                    "id": rid, "attempt": attempt, "fingerprint": fp, "now": now, "stale": now - RUNNING_STALE}):
                uow.commit()  # its process died mid-request: nothing of it was committed
                return Claim("run", scope=scope, key=key, fingerprint=fp, attempt=attempt)
            else:
                uow.commit()
                return self._stored(fp, rows[0][:7])
        try:
            uow.defer(_MARK_RUNNING, {"scope": scope, "key": key, "fingerprint": fp, "attempt": attempt,
                                      "created_at": now, "expires_at": now + LIFETIME})
            uow.commit()
        except IntegrityError:  # a copy wrote its record first
            uow.rollback()
            stored = self.recall(scope, key, fp)
            return stored if stored is not None else Claim("in_progress")
        return Claim("run", scope=scope, key=key, fingerprint=fp, attempt=attempt)

    def _stored(self, fp: str, row) -> Claim:
        """What a request with fingerprint `fp` gets from the key's record (a lookup's row)."""
        _, _, stored_fp, status, response_status, sealed, _ = row
        if stored_fp != fp:
            return Claim("conflict")
        if status != "done":  # a claim left by the protocol before this one: wait it out
            return Claim("in_progress")
        return Claim("replay", status=response_status, body=self._sealer.open(bytes(sealed or b"")))

    def _row(self, claim: Claim, status: int, body: bytes, now: datetime) -> dict:
        return {"scope": claim.scope, "key": claim.key, "fingerprint": claim.fingerprint,
                "response_status": status, "response_sealed": self._sealer.seal(body),
                "created_at": now, "expires_at": now + LIFETIME}

    def complete(self, uow: UnitOfWork, claim: Claim, status: int, body: bytes,
                 now: datetime | None = None) -> None:
        """Store the outcome with the operation's effects, in its transaction (`uow`).
        If another copy stored one first, the commit fails on the unique index."""
        if claim.outcome != "run":
            raise RuntimeError(f"cannot complete a claim that is not to run ({claim.outcome})")
        row = self._row(claim, status, body, now or utcnow())
        if claim.attempt:  # SQLite: the outcome replaces this request's running record
            uow.defer(_FINISH, {**row, "attempt": claim.attempt})
        else:
            uow.defer(_STORE, row)

    def commit(self, uow: UnitOfWork, claim: Claim, status: int, body: bytes) -> Claim | None:
        """`complete`, then commit the operation with its outcome. None when it committed.

        A copy of the request that read the key free just before ours committed got past
        the lock; the record's unique index stopped whichever committed second. For that
        one this rolls back and returns the stored outcome, to answer with instead. Any
        other integrity error goes on as the bug it is.
        """
        try:
            self.complete(uow, claim, status, body)
            uow.commit()
            return None
        except IntegrityError:
            uow.rollback()
            stored = self.recall(claim.scope, claim.key, claim.fingerprint)
            if stored is None:
                raise
            return stored

    def store_refusal(self, claim: Claim, status: int, body: bytes, now: datetime | None = None) -> Claim | None:
        """Store the operation's refusal after its transaction rolled back. None when
        stored; the stored outcome (a replay) if a copy of the request got there first."""
        with UnitOfWork(self._factory) as uow:
            row = self._row(claim, status, body, now or utcnow())
            if claim.attempt:  # SQLite: no copy could get past the running record
                uow.defer(_FINISH, {**row, "attempt": claim.attempt})
                uow.commit()
                return None
            if uow.run(_STORE_UNLESS_TAKEN, row):
                uow.commit()
                return None
            uow.rollback()
            return self.recall(claim.scope, claim.key, claim.fingerprint)

    def release(self, claim: Claim) -> None:
        """Give the key back after an answer that is not stored (or a failure): a retry
        with it runs afresh. Call it once the operation's transaction has ended. On
        PostgreSQL there is nothing to give back: the lock went with the transaction."""
        if claim.attempt:
            with UnitOfWork(self._factory) as uow:
                uow.defer(_GIVE_BACK, {"scope": claim.scope, "key": claim.key, "attempt": claim.attempt})
                uow.commit()

    def recall(self, scope: str, key: str, fp: str) -> Claim | None:
        """What is stored for a key now, in a transaction of its own (None: nothing)."""
        with UnitOfWork(self._factory) as uow:
            rows = uow.run(_LOOKUP, {"scope": scope, "key": key, "now": utcnow()})
        return self._stored(fp, rows[0]) if rows else None

    def purge_expired(self, uow: UnitOfWork, now: datetime | None = None) -> int:
        """Forget records past their 24 h, in the caller's unit of work (the sweep's)."""
        res = uow.session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= (now or utcnow()))
        )
        return rowcount(res)
