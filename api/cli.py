"""The `soxara` command: operate a Soxara deployment from a shell.

Commands that create something print it as JSON on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from core.config import Settings


def _runtime(settings: Settings | None = None, *, jobs: bool = True):
    from workers.runtime import build_runtime

    # A CLI command is short-lived: in process, it runs what it causes before it exits.
    return build_runtime(settings or Settings.from_env(), jobs="eager" if jobs else None)


def _print(obj) -> None:
    print(json.dumps(obj, indent=2, default=str))


def cmd_db_upgrade(args) -> int:
    from migrations.runner import upgrade

    settings = Settings.from_env()
    upgrade(settings.database_url)
    print(f"database at head: {settings.database_url.split('@')[-1]}", file=sys.stderr)
    return 0


def cmd_serve(args) -> int:
    settings = Settings.from_env()
    from migrations.runner import upgrade

    if settings.is_sqlite:
        # The embedded default should just work on a fresh checkout.
        upgrade(settings.database_url)
    workers = args.workers or (1 if not settings.redis_url else 2 * (os.cpu_count() or 1) + 1)
    if not settings.redis_url and workers > 1:
        print("without SOXARA_REDIS_URL jobs run in process: serving with one worker", file=sys.stderr)
        workers = 1
    argv = [sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"{args.host}:{args.port}",
            "--workers", str(workers), "--threads", str(args.threads),
            "--access-logfile", "-", "--graceful-timeout", "5",
            # the access line of a request carries its trace id too
            "--access-logformat", '%(h)s "%(r)s" %(s)s %(b)s %(M)sms trace=%({x-trace-id}o)s']
    os.execv(sys.executable, argv)
    return 0


def cmd_worker(args) -> int:
    from workers.service import run_worker

    return run_worker(Settings.from_env(), burst=args.burst)


def cmd_merchant_create(args) -> int:
    from core.merchants import keys, merchants

    # The operator's first key can do what any new key does by default, plus what is named:
    # a key mints only within its own scopes, so a first key of `merchant:read
    # api_keys:manage` alone could never mint the default key a merchant's till needs.
    scopes = list(dict.fromkeys([*keys.DEFAULT_SCOPES, *(args.scopes or [])]))
    rt = _runtime()
    with rt.uow() as uow:
        m = merchants.create_merchant(uow, args.name)
        test = keys.mint_key(uow, rt.secret_key, m.id, livemode=False, scopes=scopes)
        live = keys.mint_key(uow, rt.secret_key, m.id, livemode=True, scopes=scopes) if args.live else None
        uow.commit()
    out = {
        "merchant": {"id": m.id, "name": m.name, "created_at": m.created_at.isoformat()},
        # The full key comes first: it is what the operator copies (and what scripts grep).
        "test_key": {"key": test.secret, "id": test.key.id, "prefix": test.key.prefix,
                     "scopes": test.key.scope_list},
    }
    if live:
        out["live_key"] = {"key": live.secret, "id": live.key.id, "prefix": live.key.prefix,
                           "scopes": live.key.scope_list}
    _print(out)
    return 0


def cmd_sandbox_buyer(args) -> int:
    from core.phones import normalise_local
    from core.wallets import sandbox

    if Settings.from_env().production:
        print("soxara: sandbox buyers are test-mode users; they exist in production only for "
              "test keys", file=sys.stderr)
    rt = _runtime()
    with rt.uow() as uow:
        user, wallet = sandbox.make_buyer(uow, normalise_local(args.phone))
        uow.commit()
    _print({"user": {"id": user.id, "phone_number": user.phone_number, "country_code": user.country_code},
            "wallet": {"id": wallet.id, "currency": wallet.currency, "livemode": wallet.livemode,
                       "balance": wallet.balance}})
    return 0


def cmd_ledger_check(args) -> int:
    from core.wallets import ledger

    rt = _runtime(jobs=False)
    with rt.uow() as uow:
        breaches = ledger.check(uow)
    for b in breaches:
        print(f"BREACH {b}")
    print(json.dumps({"ok": not breaches, "breaches": len(breaches)}))
    return 1 if breaches else 0


def cmd_ledger_adjust(args) -> int:
    from core.wallets import adjustments, wallets

    rt = _runtime(jobs=False)
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
    _print(out)
    return 0


def _register_money(sub) -> None:
    sb = sub.add_parser("sandbox", help="sandbox helpers").add_subparsers(dest="sb_cmd", required=True)
    b = sb.add_parser("buyer", help="a test buyer with $1000 in test USD")
    b.add_argument("--phone", required=True)
    b.set_defaults(fn=cmd_sandbox_buyer)
    lg = sub.add_parser("ledger", help="the ledger").add_subparsers(dest="l_cmd", required=True)
    lg.add_parser("check", help="verify every ledger invariant; exit 1 on any breach").set_defaults(fn=cmd_ledger_check)
    a = lg.add_parser("adjust", help="operator credit (or debit with a negative amount)")
    a.add_argument("--wallet", required=True)
    a.add_argument("--amount", required=True, type=int, help="minor units; negative debits")
    a.add_argument("--reason", required=True)
    a.set_defaults(fn=cmd_ledger_adjust)


def _register_bot(sub) -> None:
    from bot.demo import register

    register(sub)


COMMANDS: dict = {"money": _register_money, "bot": _register_bot}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="soxara", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_cmd", required=True)
    db.add_parser("upgrade", help="migrate the database to the newest schema").set_defaults(fn=cmd_db_upgrade)

    s = sub.add_parser("serve", help="run the web app under gunicorn")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=5000)
    s.add_argument("--workers", type=int, default=0)
    s.add_argument("--threads", type=int, default=8)
    s.set_defaults(fn=cmd_serve)

    w = sub.add_parser("worker", help="run an RQ worker with the scheduler")
    w.add_argument("--burst", action="store_true", help="exit once the queue is empty")
    w.set_defaults(fn=cmd_worker)

    m = sub.add_parser("merchant", help="merchants").add_subparsers(dest="m_cmd", required=True)
    mc = m.add_parser("create", help="create a merchant with a fresh test key (and live with --live)")
    mc.add_argument("--name", required=True)
    mc.add_argument("--scopes", nargs="+", default=None,
                    help="scopes the new keys hold besides the defaults (payments:create payments:read)")
    mc.add_argument("--live", action="store_true", help="also mint a live key")
    mc.set_defaults(fn=cmd_merchant_create)

    for register in COMMANDS.values():
        register(sub)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args) or 0
    except Exception as e:  # an operator wants a sentence, not a traceback
        from core.config import ConfigError
        from core.errors import SoxaraError

        if isinstance(e, (SoxaraError, ConfigError)):
            print(f"soxara: {getattr(e, 'message', e)}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
