"""The event outbox: one row per state change, written in the transaction that made it.

Because the event is committed with the change that caused it, there is never a
change without its event nor an event without its change. Delivery to merchants'
webhook endpoints reads this table (at least once); nothing is sent from here.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Boolean, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, Statement, UnitOfWork, UTCDateTime, utcnow
from core.ids import new_id

TYPES = {
    "payment.created", "payment.requires_action", "payment.succeeded", "payment.failed",
    "payment.canceled", "refund.created", "refund.succeeded", "refund.failed",
    "transfer.created", "transfer.succeeded", "transfer.claimed", "transfer.expired",
    "gift_card.created", "gift_card.redeemed", "gift_card.expired", "gift_card.shared",
    "gift_card.claimed", "membership.created", "membership.renewed", "membership.updated",
    "membership.past_due", "membership.canceled", "bill_payment.initiated",
    "bill_payment.succeeded", "bill_payment.failed",
}


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (Index("ix_events_merchant", "merchant_id", "livemode", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # evt_…
    type: Mapped[str] = mapped_column(String(40))
    livemode: Mapped[bool] = mapped_column(Boolean)
    # The merchant whose webhook endpoints hear of it; None for a person's own activity.
    merchant_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    object_type: Mapped[str] = mapped_column(String(20))
    object_id: Mapped[str] = mapped_column(String(40), index=True)
    data: Mapped[str] = mapped_column(Text)  # JSON: the object as it was at that moment
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def as_payload(self) -> dict:
        return {
            "id": self.id, "object": "event", "type": self.type, "livemode": self.livemode,
            "created_at": iso(self.created_at), "data": {"object": json.loads(self.data)},
        }


_INSERT = Statement(
    "INSERT INTO events (id, type, livemode, merchant_id, object_type, object_id, data, created_at) "
    "VALUES (:id, :type, :livemode, :merchant_id, :object_type, :object_id, :data, :created_at)",
    created_at=UTCDateTime())


def iso(t: datetime | None) -> str | None:
    if t is None:
        return None
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def record(uow: UnitOfWork, type_: str, *, object_type: str, object_id: str, snapshot: dict,
           livemode: bool, merchant_id: str | None = None) -> str:
    """Record the event (written with the next statement the transaction sends); its id."""
    if type_ not in TYPES:
        raise ValueError(f"unknown event type {type_}")
    event_id = new_id("evt")
    row = {"id": event_id, "type": type_, "livemode": livemode, "merchant_id": merchant_id,
           "object_type": object_type, "object_id": object_id,
           "data": json.dumps(snapshot, separators=(",", ":"), default=str), "created_at": utcnow()}
    uow.defer(_INSERT, row)
    return event_id
