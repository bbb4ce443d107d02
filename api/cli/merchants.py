"""`soxara merchant create`: a merchant and its first keys."""

from __future__ import annotations

import argparse

from api.cli.base import Created, command_group, runtime


def cmd_merchant_create(args: argparse.Namespace) -> Created:
    from core.merchants import keys, merchants

    # The operator's first key can do what any new key does by default, plus what is named:
    # a key mints only within its own scopes, so a first key of `merchant:read
    # api_keys:manage` alone could never mint the default key a merchant's till needs.
    scopes = list(dict.fromkeys([*keys.DEFAULT_SCOPES, *(args.scopes or [])]))
    rt = runtime()
    with rt.uow() as uow:
        m = merchants.create_merchant(uow, args.name, args.phone)
        test = keys.mint_key(uow, rt.secret_key, m.id, livemode=False, scopes=scopes)
        live = keys.mint_key(uow, rt.secret_key, m.id, livemode=True, scopes=scopes) if args.live else None
        uow.commit()
    out = {
        "merchant": {"id": m.id, "name": m.name, "phone_number": m.phone_number,
                     "created_at": m.created_at.isoformat()},
        # The full key comes first: it is what the operator copies (and what scripts grep).
        "test_key": {"key": test.secret, "id": test.key.id, "prefix": test.key.prefix,
                     "scopes": test.key.scope_list},
    }
    if live:
        out["live_key"] = {"key": live.secret, "id": live.key.id, "prefix": live.key.prefix,
                           "scopes": live.key.scope_list}
    return out


def register(sub: argparse._SubParsersAction) -> None:
    m = command_group(sub, "merchant", "merchants")
    mc = m.add_parser("create", help="create a merchant with a fresh test key (and live with --live)")
    mc.add_argument("--name", required=True)
    mc.add_argument("--scopes", nargs="+", default=None,
                    help="scopes the new keys hold besides the defaults (payments:create payments:read)")
    mc.add_argument("--phone", default=None,
                    help="the merchant's own WhatsApp number (E.164); payments asked of it are refused")
    mc.add_argument("--live", action="store_true", help="also mint a live key")
    mc.set_defaults(fn=cmd_merchant_create)
