"""Merchants: the businesses that integrate through the API. Their keys: keys.py."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, select
from sqlalchemy.orm import Mapped, mapped_column

from core import names, phones
from core.db import Base, UnitOfWork, UTCDateTime, utcnow
from core.errors import InvalidInput
from core.ids import new_id


class Merchant(Base):
    __tablename__ = "merchants"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # The merchant's own WhatsApp number (E.164), when it gave one: a payment it asks of
    # that number would be the merchant paying itself, so payments refuse it.
    phone_number: Mapped[str | None] = mapped_column(String(20), nullable=True)
    settlement_schedule: Mapped[str] = mapped_column(String(20), default="daily")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def create_merchant(uow: UnitOfWork, name: str, phone_number: str | None = None) -> Merchant:
    shown = names.fit_to_show(name, 200)  # people read it in their chat ("You received … from")
    if not shown:
        raise InvalidInput("a merchant needs a name", field="name")
    phone = phones.normalise_e164(phone_number) if phone_number else None
    m = Merchant(id=new_id("mer"), name=shown, phone_number=phone, created_at=utcnow())
    uow.session.add(m)
    uow.session.flush()
    return m


def get_merchant(uow: UnitOfWork, merchant_id: str) -> Merchant:
    return uow.get(Merchant, merchant_id, what="merchant")


def first_named(uow: UnitOfWork, name: str) -> Merchant | None:
    """The first merchant made with this name (names are not unique), or None."""
    return uow.session.scalar(select(Merchant).where(Merchant.name == name).order_by(Merchant.id).limit(1))
