"""The event outbox: one row per state change, written in the transaction that made it.

Because the event is committed with the change that caused it, there is never a
change without its event nor an event without its change. Delivery to merchants'
webhook endpoints reads this table (at least once); nothing is sent from here.

A merchant's event is written `relay_pending`: the relay (core/webhooks/deliveries.py)
fans each committed one out to the merchant's endpoints and clears the flag. Recording
one prompts the relay once the transaction commits; the scheduler's sweep relays
whatever a lost prompt left behind.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import Boolean, Index, String, Text, false, select, text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, Statement, UnitOfWork, UTCDateTime, utcnow
from core.errors import NotFound
from core.ids import new_id
from core.jobs import RELAY_EVENTS, enqueue_after_commit

TYPES = {
    "payment.created", "payment.requires_action", "payment.succeeded", "payment.failed",
    "payment.canceled", "refund.created", "refund.succeeded", "refund.failed",
    "transfer.created", "transfer.succeeded", "transfer.claimed", "transfer.expired",
    "gift_card.created", "gift_card.redeemed", "gift_card.expired", "gift_card.shared",
    "gift_card.claimed", "membership.created", "membership.renewed", "membership.updated",
    "membership.past_due", "membership.canceled", "bill_payment.initiated",
    "bill_payment.succeeded", "bill_payment.failed",
    "wallet_access.approved", "wallet_access.declined", "wallet_access.revoked",
    # Additive: Soxara disabled one of the merchant's endpoints after it failed every
    # delivery for core.webhooks.deliveries.FAILING_FOR (docs/webhooks.md).
    "webhook_endpoint.disabled",
}
# How long a merchant can list and fetch its events.
KEPT_FOR = timedelta(days=30)


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_merchant", "merchant_id", "livemode", "id"),
        # The few events the relay has yet to fan out, oldest first.
        Index("ix_events_relay_pending", "created_at", postgresql_where=text("relay_pending"),
              sqlite_where=text("relay_pending")),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # evt_…
    type: Mapped[str] = mapped_column(String(40))
    livemode: Mapped[bool] = mapped_column(Boolean)
    # The merchant whose webhook endpoints hear of it; None for a person's own activity.
    merchant_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    object_type: Mapped[str] = mapped_column(String(20))
    object_id: Mapped[str] = mapped_column(String(40), index=True)
    data: Mapped[str] = mapped_column(Text)  # JSON: the object as it was at that moment
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # True until the relay has fanned it out to its merchant's webhook endpoints. A row
    # written without it (events before webhooks, raw SQL) has nothing to relay.
    relay_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    def as_payload(self) -> dict:
        return {
            "id": self.id, "object": "event", "type": self.type, "livemode": self.livemode,
            "created_at": iso(self.created_at), "data": {"object": json.loads(self.data)},
        }


_INSERT = Statement(
    "INSERT INTO events (id, type, livemode, merchant_id, object_type, object_id, data, created_at, "
    "relay_pending) VALUES (:id, :type, :livemode, :merchant_id, :object_type, :object_id, :data, "
    ":created_at, :relay_pending)", created_at=UTCDateTime())
_RELAY_PROMPTED = "soxara_relay_prompted"


def iso(t: datetime | None) -> str | None:
    if t is None:
        return None
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def record(uow: UnitOfWork, type_: str, *, object_type: str, object_id: str, snapshot: dict,
           livemode: bool, merchant_id: str | None = None) -> str:
    """Record the event (written with the next statement the transaction sends); its id.
    A merchant's event is relayed to its webhook endpoints after the commit."""
    if type_ not in TYPES:
        raise ValueError(f"unknown event type {type_}")
    event_id = new_id("evt")
    row = {"id": event_id, "type": type_, "livemode": livemode, "merchant_id": merchant_id,
           "object_type": object_type, "object_id": object_id,
           "data": json.dumps(snapshot, separators=(",", ":"), default=str), "created_at": utcnow(),
           "relay_pending": merchant_id is not None}
    uow.defer(_INSERT, row)
    if merchant_id is not None and uow.jobs is not None and not getattr(uow, _RELAY_PROMPTED, False):
        # One prompt per transaction, however many events it wrote.
        setattr(uow, _RELAY_PROMPTED, True)
        enqueue_after_commit(uow, uow.jobs, RELAY_EVENTS)
    return event_id


def list_for(uow: UnitOfWork, merchant_id: str, livemode: bool, *, limit: int, before_id: str | None = None,
             type_: str | None = None, created_after: datetime | None = None,
             created_before: datetime | None = None, now: datetime | None = None) -> list[Event]:
    """The merchant's events of this mode from the last KEPT_FOR, newest first."""
    oldest = (now or utcnow()) - KEPT_FOR
    if created_after is None or created_after < oldest:
        created_after = oldest
    q = select(Event).where(Event.merchant_id == merchant_id, Event.livemode == livemode,
                            Event.created_at >= created_after)
    if created_before is not None:
        q = q.where(Event.created_at <= created_before)
    if type_:
        q = q.where(Event.type == type_)
    if before_id:
        q = q.where(Event.id < before_id)
    return list(uow.session.scalars(q.order_by(Event.id.desc()).limit(limit)))


def get_for(uow: UnitOfWork, merchant_id: str, livemode: bool, event_id: str, *,
            now: datetime | None = None) -> Event:
    """One of the merchant's events of this mode from the last KEPT_FOR, or NotFound."""
    e = uow.session.get(Event, event_id)
    if e is None or e.merchant_id != merchant_id or e.livemode != livemode \
            or e.created_at < (now or utcnow()) - KEPT_FOR:
        raise NotFound("no such event")
    return e
