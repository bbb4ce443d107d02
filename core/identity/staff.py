"""Staff members: the people who may use the support console, known by their phone number.

A member is an `agent` (reads conversations, helps people) or a `lead` (an agent who also
oversees agents). The operator adds them with `soxara staff add --phone P --role R`; the
console (a later issue) logs them in by their phone and checks the role.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import CheckConstraint, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UnitOfWork, UTCDateTime, utcnow
from core.errors import InvalidInput
from core.ids import new_id
from core.phones import normalise_e164

ROLES = ("agent", "lead")


class StaffMember(Base):
    __tablename__ = "staff_members"
    __table_args__ = (CheckConstraint("role IN ('agent', 'lead')", name="role"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    phone_number: Mapped[str] = mapped_column(String(20), unique=True)
    role: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


@dataclass(frozen=True)
class StaffAdded:
    """What `add_staff` did: `created` a member, left one `unchanged`, or `role_changed`
    (from `previous_role`)."""

    member: StaffMember
    outcome: str
    previous_role: str | None = None


def _locked(uow: UnitOfWork, phone_e164: str) -> StaffMember | None:
    return uow.session.scalar(select(StaffMember).where(StaffMember.phone_number == phone_e164)
                              .with_for_update())


def add_staff(uow: UnitOfWork, phone_e164: str, role: str) -> StaffAdded:
    """Make the person with this phone a staff member with this role.

    Idempotent: the same phone and role again changes nothing. Another role for a phone
    already on the staff changes that member's role (the operator named it explicitly);
    there is one member per phone. Two adds at once are put in order by the member's row
    (a new phone: by its unique index, the second then finding the first's member).
    """
    if role not in ROLES:
        raise InvalidInput(f"a staff member's role is one of {', '.join(ROLES)}", field="role")
    phone = normalise_e164(phone_e164)
    member = _locked(uow, phone)
    if member is None:
        member = StaffMember(id=new_id("stf"), phone_number=phone, role=role, created_at=utcnow())
        try:
            with uow.session.begin_nested():
                uow.session.add(member)
            return StaffAdded(member, "created")
        except IntegrityError:
            member = _locked(uow, phone)
            assert member is not None
    if member.role == role:
        return StaffAdded(member, "unchanged")
    previous, member.role = member.role, role
    uow.session.flush()
    return StaffAdded(member, "role_changed", previous)
