"""`soxara sandbox buyer`, `soxara ledger check` and `soxara ledger adjust`."""

from __future__ import annotations

import argparse
import json
import sys

from api.cli.base import Created, command_group, runtime
from core.config import Settings


def cmd_sandbox_buyer(args: argparse.Namespace) -> Created:
    from core.phones import normalise_local
    from core.wallets import sandbox

    if Settings.from_env().production:
        print("soxara: sandbox buyers are test-mode users; they exist in production only for "
              "test keys", file=sys.stderr)
    rt = runtime()
    with rt.uow() as uow:
        user, wallet = sandbox.make_buyer(uow, normalise_local(args.phone))
        uow.commit()
    return {"user": {"id": user.id, "phone_number": user.phone_number, "country_code": user.country_code},
            "wallet": {"id": wallet.id, "currency": wallet.currency, "livemode": wallet.livemode,
                       "balance": wallet.balance}}


def cmd_ledger_check(args: argparse.Namespace) -> int:
    from core.wallets import ledger

    rt = runtime(jobs=False)
    with rt.uow() as uow:
        breaches = ledger.check(uow)
    for b in breaches:
        print(f"BREACH {b}")
    print(json.dumps({"ok": not breaches, "breaches": len(breaches)}))
    return 1 if breaches else 0


def cmd_ledger_adjust(args: argparse.Namespace) -> Created:
    from core.wallets import adjustments, wallets

    rt = runtime(jobs=False)
    with rt.uow() as uow:
        entry = adjustments.adjust(uow, wallet_id=args.wallet, amount=args.amount, reason=args.reason)
        # Read before the commit: the balance this entry left (its row is ours until then),
        # and nothing after the commit can fail the command, which would have the operator
        # run it, and move the money, again.
        w = wallets.get(uow, args.wallet)
        out = {"entry": {"id": entry.id, "kind": entry.kind, "obj_id": entry.obj_id, "memo": entry.memo,
                         "currency": entry.currency, "livemode": entry.livemode,
                         "created_at": entry.created_at.isoformat()},
               "wallet": {"id": w.id, "balance": w.balance, "currency": w.currency}}
        uow.commit()
    return out


def register(sub: argparse._SubParsersAction) -> None:
    sb = command_group(sub, "sandbox", "sandbox helpers")
    b = sb.add_parser("buyer", help="a test buyer with $1000 in test USD")
    b.add_argument("--phone", required=True)
    b.set_defaults(fn=cmd_sandbox_buyer)
    lg = command_group(sub, "ledger", "the ledger")
    lg.add_parser("check", help="verify every ledger invariant; exit 1 on any breach").set_defaults(fn=cmd_ledger_check)
    a = lg.add_parser("adjust", help="operator credit (or debit with a negative amount)")
    a.add_argument("--wallet", required=True)
    a.add_argument("--amount", required=True, type=int, help="minor units; negative debits")
    a.add_argument("--reason", required=True)
    a.set_defaults(fn=cmd_ledger_adjust)
