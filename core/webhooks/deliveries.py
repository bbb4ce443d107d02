"""Deliveries: each committed event, POSTed to each of its merchant's endpoints that wants it.

The relay (`relay`) reads committed events still `relay_pending` (core/events/events.py),
oldest first, and writes one delivery per (event, endpoint that listens for its type);
once that commits, the relay job delivers to those endpoints itself, or queues a job for
each that is failing (workers/webhooks.py). One relay runs at a time
(a transaction-scoped advisory lock on PostgreSQL; SQLite has one writer anyway), so the
deliveries' `seq` follows the order in which the events were seen committed.

A delivery job works one endpoint (`claim`, then the worker sends, then `record`):

- A claim, under the endpoint's row lock, leases up to `CLAIM_BATCH` of its deliveries
  (one while the endpoint is failing) for `LEASE`; the job sends them in order while a
  whole send still fits in the lease, and records them in one transaction, handing back
  any it did not send. Two jobs, or a job and the sweep, never send one delivery at the
  same time. A worker killed mid-delivery leaves a lease that runs out; the sweep then
  prompts the endpoint again and the delivery is sent again (at least once: receivers
  dedupe by the event id).
- Order: an endpoint's first attempts go one at a time, in `seq` order: a delivery's
  first attempt waits until every earlier delivery to the endpoint has had its own. A
  delivery being retried no longer holds the ones behind it.
- Every attempt is a row (`WebhookAttempt`): time, status code, latency, the first bytes
  of the answer, the error. A failed one is retried on `RETRY` (exponential, jittered,
  spanning three days); after its last attempt the delivery is `failed`.
- An endpoint that has failed every attempt for `FAILING_FOR` is disabled, and the
  merchant finds a `webhook_endpoint.disabled` event in its list.

The sweep (workers/webhooks.py) relays events a lost relay job left, and prompts every
endpoint with a delivery that is due (a retry, a lease run out, a first attempt whose
job has not come within `GRACE`).
"""

from __future__ import annotations

import json
import secrets as random_tokens
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    Boolean,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    bindparam,
    select,
    text,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, Seq, UnitOfWork, UTCDateTime, rowcount, utcnow
from core.errors import InvalidState
from core.events import events
from core.jobs import DELIVER_WEBHOOKS, enqueue_after_commit
from core.retry import Backoff
from core.webhooks import endpoints, signature
from core.webhooks.endpoints import WebhookEndpoint
from core.webhooks.sender import Delivery

TIMEOUT = 10.0  # seconds: a 2xx within this is success (CONTRACT.md section 3)
LEASE = timedelta(seconds=40)
GRACE = timedelta(seconds=10)
RETRY = Backoff.exponential(first=30, factor=2, cap=6 * 3600, span=timedelta(days=3), jitter=0.2)
FAILING_FOR = timedelta(days=3)
RELAY_BATCH = 200
_RELAY_LOCK = 0x50_78_61_72_61_57_48  # pg_advisory_xact_lock key: "the relay runs"


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "endpoint_id"),
        # An endpoint's deliveries still to make, in order: what a delivery job walks.
        Index("ix_webhook_deliveries_pending", "endpoint_id", "seq",
              postgresql_where=text("next_attempt_at IS NOT NULL"),
              sqlite_where=text("next_attempt_at IS NOT NULL")),
        Index("ix_webhook_deliveries_next_attempt_at", "next_attempt_at"),
    )

    # The order the relay wrote them in: an endpoint's first attempts follow it.
    seq: Mapped[int] = mapped_column(Seq, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(40))
    endpoint_id: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(10))  # pending | succeeded | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When the next attempt is due; NULL once it succeeded or was given up.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Held by the job sending it until then (a lease: a killed worker's runs out).
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    claim_token: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    succeeded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_event", "event_id", "seq"),)

    seq: Mapped[int] = mapped_column(Seq, primary_key=True, autoincrement=True)
    delivery_seq: Mapped[int] = mapped_column(Seq)
    event_id: Mapped[str] = mapped_column(String(40))
    endpoint_id: Mapped[str] = mapped_column(String(40))
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    latency_ms: Mapped[int] = mapped_column(Integer)
    answer: Mapped[str] = mapped_column(Text)  # the first bytes of the endpoint's answer
    error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    succeeded: Mapped[bool] = mapped_column(Boolean)


# --- the relay ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Relayed:
    events: int  # how many were relayed (fewer than the limit: none are left)
    endpoints: tuple[str, ...]  # those that got deliveries, in order
    failing: frozenset[str]  # of those, the ones whose last attempts failed


def relay(uow: UnitOfWork, *, now: datetime | None = None, limit: int = RELAY_BATCH) -> Relayed:
    """Fan out up to `limit` committed events, oldest first, to their merchants'
    endpoints. The caller commits, then sees that each endpoint that got a delivery is
    delivered to (workers/webhooks.py); the sweep does if it does not."""
    now = now or utcnow()
    if uow.is_postgres:
        # Waits for a relay already running: what it is relaying is then committed and
        # not read twice, and seq keeps the order the events were seen in.
        uow.session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _RELAY_LOCK})
    pending = list(uow.session.scalars(
        select(events.Event).where(events.Event.relay_pending)
        .order_by(events.Event.created_at, events.Event.id).limit(limit)))
    if not pending:
        return Relayed(0, (), frozenset())
    merchants = {e.merchant_id for e in pending}
    listening = list(uow.session.scalars(
        select(WebhookEndpoint).where(WebhookEndpoint.merchant_id.in_(merchants),
                                      WebhookEndpoint.enabled, WebhookEndpoint.deleted_at.is_(None))
        .order_by(WebhookEndpoint.id)))
    prompted: list[str] = []
    for ev in pending:
        for ep in listening:
            if ep.merchant_id == ev.merchant_id and ep.livemode == ev.livemode and ep.listens_for(ev.type):
                uow.session.add(WebhookDelivery(event_id=ev.id, endpoint_id=ep.id, status="pending", attempts=0,
                                                next_attempt_at=now, created_at=now))
                if ep.id not in prompted:
                    prompted.append(ep.id)
    uow.session.execute(update(events.Event).where(events.Event.id.in_([e.id for e in pending]))
                        .values(relay_pending=False))
    return Relayed(len(pending), tuple(prompted),
                   frozenset(ep.id for ep in listening if ep.id in prompted and ep.failing_since is not None))


# --- one attempt: claim, (the worker sends), record ----------------------------------------

@dataclass(frozen=True)
class Leased:
    """One delivery of a claim: the event as it is sent, and its attempts so far."""

    seq: int
    event_id: str
    attempts: int  # before this one
    body: bytes


@dataclass(frozen=True)
class Claimed:
    """Deliveries to one endpoint leased to one job, in the order they must go, with all
    it needs to send them outside a transaction."""

    token: str
    endpoint_id: str
    url: str
    livemode: bool
    secrets: tuple[str, ...]  # empty: the sealed secret cannot be opened
    items: tuple[Leased, ...]
    leased_at: datetime

    def headers(self, item: Leased, now: datetime) -> dict[str, str]:
        return {signature.HEADER: signature.header(list(self.secrets), int(now.timestamp()), item.body),
                signature.EVENT_ID_HEADER: item.event_id}

    def may_start(self, now: datetime) -> bool:
        """Whether another of its deliveries can still be made within the lease (the first
        always may: a lease is longer than one delivery)."""
        return now + timedelta(seconds=TIMEOUT) + _LEASE_MARGIN < self.leased_at + LEASE


_LEASE_MARGIN = timedelta(seconds=5)  # the writes around a send
CLAIM_BATCH = 20
# The endpoint's deliveries that may go now, in order: due and not held, and for a first
# attempt, no earlier first attempt that is held by another job or not due yet (an earlier
# one that is due and free comes first in this very list).
_NEXT = text(
    "SELECT d.seq FROM webhook_deliveries d WHERE d.endpoint_id = :endpoint_id "
    "AND d.next_attempt_at IS NOT NULL AND d.next_attempt_at <= :now "
    "AND (d.claimed_until IS NULL OR d.claimed_until < :now) "
    "AND (d.attempts > 0 OR NOT EXISTS (SELECT 1 FROM webhook_deliveries p "
    " WHERE p.endpoint_id = d.endpoint_id AND p.next_attempt_at IS NOT NULL AND p.attempts = 0 "
    " AND p.seq < d.seq AND (p.next_attempt_at > :now OR p.claimed_until >= :now))) "
    "ORDER BY d.seq LIMIT :limit").bindparams(bindparam("now", type_=UTCDateTime()))


def claim(uow: UnitOfWork, secret_key: str, endpoint_id: str, *, now: datetime | None = None,
          limit: int = CLAIM_BATCH) -> Claimed | None:
    """Lease up to `limit` of the endpoint's deliveries that may go now (in order, see the
    module), or None: nothing is due, the endpoint is disabled or gone, or another job
    holds what is next. One claim at a time per endpoint (its row is locked until the
    caller commits, which it does before sending)."""
    now = now or utcnow()
    ep = uow.session.get(WebhookEndpoint, endpoint_id, with_for_update=True, populate_existing=True)
    if ep is None or not ep.enabled or ep.deleted_at is not None:
        return None
    if ep.failing_since is not None:
        limit = 1  # an endpoint that fails (or hangs) gets one delivery at a time
    seqs = list(uow.session.execute(_NEXT, {"endpoint_id": endpoint_id, "now": now, "limit": limit}).scalars())
    if not seqs:
        return None
    token = random_tokens.token_hex(16)
    uow.session.execute(update(WebhookDelivery).where(WebhookDelivery.seq.in_(seqs))
                        .values(claimed_until=now + LEASE, claim_token=token)
                        .execution_options(synchronize_session=False))
    rows = uow.session.execute(
        select(WebhookDelivery.seq, WebhookDelivery.attempts, events.Event)
        .join(events.Event, events.Event.id == WebhookDelivery.event_id)
        .where(WebhookDelivery.seq.in_(seqs)).order_by(WebhookDelivery.seq)).all()
    try:
        keys = tuple(endpoints.signing_secrets(ep, secret_key, now))
    except endpoints.SecretUnreadable:
        keys = ()
    items = tuple(Leased(seq, ev.id, attempts, json.dumps(ev.as_payload(), separators=(",", ":")).encode())
                  for seq, attempts, ev in rows)
    return Claimed(token=token, endpoint_id=ep.id, url=ep.url, livemode=ep.livemode, secrets=keys, items=items,
                   leased_at=now)


UNSIGNABLE = Delivery(None, 0, error="not sent: the endpoint's signing secret cannot be opened; rotate it")


def record(uow: UnitOfWork, claimed: Claimed, outcomes: list[tuple[Leased, Delivery, datetime]], *,
           now: datetime | None = None) -> dict[int, str]:
    """Record the attempts made (each with when it was made) and what follows from them,
    and hand back the claim's deliveries that were not attempted; {seq: status now}. An
    attempt made after its lease ran out (and the delivery was claimed again) is recorded
    and changes nothing else ("superseded")."""
    now = now or utcnow()
    d, ep = WebhookDelivery, WebhookEndpoint
    statuses: dict[int, str] = {}
    succeeded: list[int] = []
    for item, outcome, at in outcomes:
        uow.session.add(WebhookAttempt(
            delivery_seq=item.seq, event_id=item.event_id, endpoint_id=claimed.endpoint_id, attempted_at=at,
            status_code=outcome.status, latency_ms=outcome.latency_ms,
            answer=outcome.answer.replace("\x00", "\ufffd"),
            error=(outcome.error or None) and outcome.error[:300], succeeded=outcome.ok))
        if outcome.ok:
            succeeded.append(item.seq)
            continue
        retry_at = RETRY.next_attempt_at(item.attempts + 1, at)
        status = "pending" if retry_at else "failed"
        held = uow.session.execute(
            update(d).where(d.seq == item.seq, d.claim_token == claimed.token)
            .values(attempts=d.attempts + 1, status=status, next_attempt_at=retry_at, claimed_until=None,
                    claim_token=None, last_attempt_at=at, succeeded_at=None)
            .execution_options(synchronize_session=False))
        statuses[item.seq] = status if rowcount(held) else "superseded"
    if succeeded:
        # One statement for all that went through (the usual case): they share the claim.
        done = set(uow.session.execute(
            update(d).where(d.seq.in_(succeeded), d.claim_token == claimed.token)
            .values(attempts=d.attempts + 1, status="succeeded", next_attempt_at=None, claimed_until=None,
                    claim_token=None, last_attempt_at=now, succeeded_at=now)
            .returning(d.seq).execution_options(synchronize_session=False)).scalars())
        statuses.update({seq: "succeeded" if seq in done else "superseded" for seq in succeeded})
    attempted = {item.seq for item, _, _ in outcomes}
    unsent = [item.seq for item in claimed.items if item.seq not in attempted]
    if unsent:
        uow.session.execute(update(d).where(d.seq.in_(unsent), d.claim_token == claimed.token)
                            .values(claimed_until=None, claim_token=None)
                            .execution_options(synchronize_session=False))
    if not outcomes:
        return statuses
    failing_from = None  # when the run of failures that ends the batch began
    for _, o, at in outcomes:
        failing_from = None if o.ok else (failing_from or at)
    if any(o.ok for _, o, _ in outcomes):
        uow.session.execute(update(ep).where(ep.id == claimed.endpoint_id, ep.failing_since.is_not(None))
                            .values(failing_since=None).execution_options(synchronize_session=False))
    if failing_from is None:
        return statuses
    uow.session.execute(update(ep).where(ep.id == claimed.endpoint_id, ep.failing_since.is_(None))
                        .values(failing_since=failing_from).execution_options(synchronize_session=False))
    disabled = uow.session.execute(
        update(ep).where(ep.id == claimed.endpoint_id, ep.enabled, ep.deleted_at.is_(None),
                         ep.failing_since <= now - FAILING_FOR)
        .values(enabled=False, updated_at=now,
                disabled_reason=f"every delivery failed for {FAILING_FOR.days} days")
        .execution_options(synchronize_session=False))
    if rowcount(disabled) == 1:
        e = uow.session.get(WebhookEndpoint, claimed.endpoint_id, populate_existing=True)
        assert e is not None
        events.record(uow, "webhook_endpoint.disabled", object_type="webhook_endpoint", object_id=e.id,
                      snapshot=e.snapshot(), livemode=e.livemode, merchant_id=e.merchant_id)
    return statuses


# --- what the sweep and the API need ------------------------------------------------------------

def due_endpoints(uow: UnitOfWork, now: datetime, limit: int = 500) -> list[str]:
    """Enabled endpoints with a delivery that should be under way and is not: a retry
    that is due, a lease that ran out, a first attempt whose job has not come in GRACE."""
    d, ep = WebhookDelivery, WebhookEndpoint
    q = (select(d.endpoint_id).join(ep, ep.id == d.endpoint_id)
         .where(d.next_attempt_at <= now, (d.claimed_until.is_(None)) | (d.claimed_until < now),
                (d.attempts > 0) | (d.created_at <= now - GRACE), ep.enabled, ep.deleted_at.is_(None))
         .group_by(d.endpoint_id).limit(limit))
    return list(uow.session.scalars(q))


def pending_relay(uow: UnitOfWork) -> bool:
    return uow.session.scalar(select(events.Event.id).where(events.Event.relay_pending).limit(1)) is not None


def redeliver(uow: UnitOfWork, jobs, merchant_id: str, livemode: bool, event_id: str, *,
              now: datetime | None = None) -> events.Event:
    """Send the event again, now, to every endpoint of the merchant that listens for it
    (those it was never sent to included). InvalidState when none does."""
    now = now or utcnow()
    ev = events.get_for(uow, merchant_id, livemode, event_id, now=now)
    listening = [ep for ep in uow.session.scalars(
        select(WebhookEndpoint).where(WebhookEndpoint.merchant_id == merchant_id,
                                      WebhookEndpoint.livemode == livemode).order_by(WebhookEndpoint.id))
        if ep.listens_for(ev.type)]
    if not listening:
        raise InvalidState("no enabled webhook endpoint listens for this event's type")
    for ep in listening:
        d = uow.session.scalar(select(WebhookDelivery).where(
            WebhookDelivery.event_id == ev.id, WebhookDelivery.endpoint_id == ep.id).with_for_update())
        if d is None:
            uow.session.add(WebhookDelivery(event_id=ev.id, endpoint_id=ep.id, status="pending", attempts=0,
                                            next_attempt_at=now, created_at=now))
        else:
            d.status, d.next_attempt_at = "pending", now
        enqueue_after_commit(uow, jobs, DELIVER_WEBHOOKS, ep.id)
    uow.session.flush()
    return ev


def deliveries_of(uow: UnitOfWork, event_id: str) -> list[WebhookDelivery]:
    return list(uow.session.scalars(select(WebhookDelivery).where(WebhookDelivery.event_id == event_id)
                                    .order_by(WebhookDelivery.seq)))


def attempts_of(uow: UnitOfWork, event_id: str, limit: int = 100) -> list[WebhookAttempt]:
    """The event's delivery attempts, newest first."""
    return list(uow.session.scalars(select(WebhookAttempt).where(WebhookAttempt.event_id == event_id)
                                    .order_by(WebhookAttempt.seq.desc()).limit(limit)))
