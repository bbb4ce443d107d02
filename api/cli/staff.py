"""`soxara staff add --phone P --role agent|lead`: who may use the support console."""

from __future__ import annotations

import argparse

from api.cli.base import Created, command_group, runtime
from core.events.events import iso
from core.identity.staff import ROLES


def cmd_staff_add(args: argparse.Namespace) -> Created:
    from core.identity import staff
    from core.phones import normalise_local

    rt = runtime(jobs=False)
    with rt.uow() as uow:
        added = staff.add_staff(uow, normalise_local(args.phone), args.role)
        uow.commit()
    m = added.member
    return {"staff_member": {"id": m.id, "object": "staff_member", "phone_number": m.phone_number,
                             "role": m.role, "created_at": iso(m.created_at)},
            "outcome": added.outcome, "previous_role": added.previous_role}


def register(sub: argparse._SubParsersAction) -> None:
    s = command_group(sub, "staff", "support staff")
    a = s.add_parser("add", help="make a phone a staff member (again with another --role: change its role)")
    a.add_argument("--phone", required=True, help="E.164 (+231…) or the local form (0881…)")
    a.add_argument("--role", required=True, choices=ROLES)
    a.set_defaults(fn=cmd_staff_add)
