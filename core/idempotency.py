"""Idempotency records: one per (scope, key), so a retried operation runs at most once.

The caller first *claims* the key in a short transaction of its own (the unique index
decides who runs when twenty copies arrive together), then runs the operation and
*completes* the record inside the operation's transaction: the outcome and the
operation's effects commit together or not at all. Completing checks the claim's
attempt token, so a claim taken over after a crash can never commit twice.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import (
    Integer,
    LargeBinary,
    String,
    Table,
    UniqueConstraint,
    bindparam,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column, sessionmaker

from core.crypto import Sealer
from core.db import Base, UnitOfWork, UTCDateTime, rowcount, utcnow
from core.ids import random_string

LIFETIME = timedelta(hours=24)
# A claim still "running" after this long belongs to a process that died mid-request;
# its transaction rolled back, so a retry may take the key over.
ABANDONED_AFTER = timedelta(seconds=120)


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


# Built once at import: every API write claims and completes a key, and building the ORM
# insert/flush and UPDATE statement objects per call cost more CPU than the round trips
# (docs/bench-transfers.md). Core statements with bindparams are compiled once.
_KEYS = cast(Table, IdempotencyRecord.__table__)
_CLAIM = insert(_KEYS).returning(_KEYS.c.id)
_COMPLETE = (
    update(_KEYS)
    .where(_KEYS.c.id == bindparam("b_id"), _KEYS.c.attempt == bindparam("b_attempt"),
           _KEYS.c.status == "running")
    .values(status="done", response_status=bindparam("b_status"),
            response_sealed=bindparam("b_sealed"))
)


def fingerprint(method: str, path: str, body) -> str:
    canon = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(f"{method} {path}\n{canon}".encode()).hexdigest()


@dataclass
class Claim:
    """Outcome of claiming a key: run it (`attempt` set), replay it, or refuse it."""

    outcome: str  # "run" | "replay" | "conflict" | "in_progress"
    record_id: int | None = None
    attempt: str | None = None
    status: int | None = None
    body: bytes | None = None


class IdempotencyStore:
    def __init__(self, session_factory: sessionmaker, secret_key: str):
        self._factory = session_factory
        self._sealer = Sealer(secret_key)

    def claim(self, scope: str, key: str, fp: str, now: datetime | None = None) -> Claim:
        now = now or utcnow()
        for _ in range(3):
            with UnitOfWork(self._factory) as uow:
                s = uow.session
                attempt = random_string(32)
                try:
                    rid = s.connection().execute(_CLAIM, {
                        "scope": scope, "key": key, "fingerprint": fp, "attempt": attempt,
                        "status": "running", "created_at": now, "expires_at": now + LIFETIME,
                    }).scalar_one()
                    uow.commit()
                    return Claim("run", record_id=rid, attempt=attempt)
                except IntegrityError:
                    uow.rollback()
                existing = s.scalar(
                    select(IdempotencyRecord).where(
                        IdempotencyRecord.scope == scope, IdempotencyRecord.key == key
                    )
                )
                if existing is None:
                    continue  # released between our insert and our read: try again
                if existing.expires_at <= now:
                    s.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == existing.id))
                    uow.commit()
                    continue
                if existing.fingerprint != fp:
                    return Claim("conflict")
                if existing.status == "done":
                    body = self._sealer.open(existing.response_sealed or b"")
                    return Claim("replay", status=existing.response_status, body=body)
                if existing.created_at + ABANDONED_AFTER <= now:
                    new_attempt = random_string(32)
                    res = s.execute(
                        update(IdempotencyRecord)
                        .where(IdempotencyRecord.id == existing.id,
                               IdempotencyRecord.attempt == existing.attempt,
                               IdempotencyRecord.status == "running")
                        .values(attempt=new_attempt, created_at=now)
                    )
                    if rowcount(res) == 1:
                        rid = existing.id
                        uow.commit()
                        return Claim("run", record_id=rid, attempt=new_attempt)
                return Claim("in_progress")
        return Claim("in_progress")

    def complete(self, uow: UnitOfWork, claim: Claim, status: int, body: bytes) -> None:
        """Store the outcome inside the operation's own transaction (`uow`)."""
        # A Core statement does not autoflush: flush the operation's pending rows first, as
        # the ORM UPDATE did, so a failing write still fails here, before the outcome.
        uow.session.flush()
        res = uow.session.connection().execute(_COMPLETE, {
            "b_id": claim.record_id, "b_attempt": claim.attempt, "b_status": status,
            "b_sealed": self._sealer.seal(body),
        })
        if rowcount(res) != 1:
            raise RuntimeError("idempotency claim lost: refusing to commit the operation twice")

    def release(self, claim: Claim) -> None:
        """Forget a claim whose request was refused before the operation began."""
        with UnitOfWork(self._factory) as uow:
            uow.session.execute(
                delete(IdempotencyRecord).where(
                    IdempotencyRecord.id == claim.record_id,
                    IdempotencyRecord.attempt == claim.attempt,
                    IdempotencyRecord.status == "running",
                )
            )
            uow.commit()

    def purge_expired(self, now: datetime | None = None) -> int:
        with UnitOfWork(self._factory) as uow:
            res = uow.session.execute(
                delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= (now or utcnow()))
            )
            uow.commit()
            return rowcount(res)
