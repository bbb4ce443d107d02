"""Staff members (core/identity/staff.py): who may use the support console, and as what."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core.errors import InvalidInput
from tests.conftest import at_once


def _add(rt, phone: str, role: str):
    from core.identity import staff

    with rt.uow() as uow:
        added = staff.add_staff(uow, phone, role)
        uow.commit()
    return added


def _count(rt) -> int:
    from core.identity.staff import StaffMember

    with rt.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(StaffMember))


def test_a_new_phone_becomes_a_staff_member_with_its_role(runtime):
    added = _add(runtime, "+231881000111", "agent")
    assert added.outcome == "created" and added.previous_role is None
    m = added.member
    assert m.id.startswith("stf_") and m.phone_number == "+231881000111" and m.role == "agent"
    assert m.created_at.tzinfo is not None


def test_adding_the_same_phone_and_role_again_changes_nothing(runtime):
    first = _add(runtime, "+231881000111", "lead")
    again = _add(runtime, "+231881000111", "lead")
    assert again.outcome == "unchanged" and again.member.id == first.member.id
    assert again.member.created_at == first.member.created_at
    assert _count(runtime) == 1


def test_another_role_for_the_same_phone_changes_the_members_role(runtime):
    first = _add(runtime, "+231881000111", "agent")
    promoted = _add(runtime, "+231881000111", "lead")
    assert (promoted.outcome, promoted.previous_role) == ("role_changed", "agent")
    assert promoted.member.id == first.member.id and promoted.member.role == "lead"
    assert _count(runtime) == 1


@pytest.mark.parametrize("role", ["admin", "", "Agent", None])
def test_a_role_other_than_agent_or_lead_is_refused(runtime, role):
    with pytest.raises(InvalidInput) as e:
        _add(runtime, "+231881000111", role)
    assert e.value.details == {"field": "role"}
    assert _count(runtime) == 0


@pytest.mark.parametrize("phone", ["0881000111", "+2318810", "not a phone", ""])
def test_a_phone_not_in_e164_form_is_refused(runtime, phone):
    with pytest.raises(InvalidInput) as e:
        _add(runtime, phone, "agent")
    assert e.value.code == "INVALID_PHONE_NUMBER"


def test_concurrent_adds_of_one_phone_make_one_member(pg_runtime):
    """Two operators (or a script run twice) add the same person at once: the unique phone
    decides, and the second finds the first's member instead of failing."""
    results = at_once(6, lambda i: _add(pg_runtime, "+231881000111", "agent"))
    assert sorted(r.outcome for r in results) == ["created"] + ["unchanged"] * 5
    assert len({r.member.id for r in results}) == 1
    assert _count(pg_runtime) == 1
