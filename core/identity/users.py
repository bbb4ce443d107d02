"""People, known by their phone number. A user exists from their first contact."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from core import names
from core.db import Base, UnitOfWork, UTCDateTime, utcnow
from core.ids import new_id
from core.phones import country_code


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    phone_number: Mapped[str] = mapped_column(String(20), unique=True)
    country_code: Mapped[str] = mapped_column(String(2))
    profile_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def find_by_phone(uow: UnitOfWork, phone_e164: str) -> User | None:
    return uow.session.scalar(select(User).where(User.phone_number == phone_e164))


def shown_as(phone_e164: str, profile_name: str | None) -> str:
    """How a person reads in someone else's chat: their number, with their name when Soxara
    knows one (`+231881234567 (Musu)`). The same both ways: the sender's confirmation shows
    the recipient so, and the recipient's notice shows the sender so. The name is cleaned
    again (rows stored before names were cleaned may hold anything) and kept short."""
    name = names.fit_to_show(profile_name, 30)
    return f"{phone_e164} ({name})" if name else phone_e164


def shown(uow: UnitOfWork, phone_e164: str) -> str:
    """`shown_as` for whoever has this number (only the number if nobody has it yet)."""
    u = find_by_phone(uow, phone_e164)
    return shown_as(phone_e164, u.profile_name if u else None)


def get(uow: UnitOfWork, user_id: str) -> User:
    return uow.get(User, user_id, what="user")


def get_or_create(uow: UnitOfWork, phone_e164: str, profile_name: str | None = None) -> User:
    """The user with this phone, created on first contact.

    Two first contacts can race (an OTP request and a WhatsApp message at once); a
    savepoint lets the loser of the unique index pick up the winner's row.
    """
    u = find_by_phone(uow, phone_e164)
    if u is not None:
        return u
    u = User(id=new_id("usr"), phone_number=phone_e164, country_code=country_code(phone_e164),
             profile_name=names.fit_to_show(profile_name), created_at=utcnow())
    try:
        with uow.session.begin_nested():
            uow.session.add(u)
    except IntegrityError:
        u = find_by_phone(uow, phone_e164)
        assert u is not None
    return u
