"""The demo (`soxara demo`, api/cli/demo.py): a demo merchant and two funded sandbox users,
and where to chat with them.

Sandbox only. Running it again tops the two users back up to $1000 (test USD) and mints
the demo merchant a fresh test key (keys are shown once).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from core.runtime import Runtime

DEMO_MERCHANT = "Soxara Demo Shop"
DEMO_USERS = (("+231886100001", "Musu"), ("+231886100002", "Kollie"))


def seed(rt: Runtime) -> dict[str, Any]:
    from core.events.events import iso
    from core.merchants import keys, merchants
    from core.wallets import sandbox

    with rt.uow() as uow:
        m = merchants.first_named(uow, DEMO_MERCHANT) or merchants.create_merchant(uow, DEMO_MERCHANT)
        key = keys.mint_key(uow, rt.secret_key, m.id, livemode=False,
                            scopes=list(keys.SCOPES))
        people = []
        for phone, name in DEMO_USERS:
            u, w = sandbox.make_buyer(uow, phone)
            if not u.profile_name:
                u.profile_name = name
            people.append((u, w))
        uow.commit()
        base = rt.settings.public_url.rstrip("/")
        return {
            "merchant": {"id": m.id, "name": m.name, "created_at": iso(m.created_at),
                         "test_key": {"key": key.secret, "id": key.key.id, "prefix": key.key.prefix}},
            "users": [
                {"id": u.id, "phone_number": u.phone_number, "country_code": u.country_code,
                 "name": u.profile_name,
                 "wallet": {"id": w.id, "currency": w.currency, "balance": w.balance,
                            "livemode": w.livemode},
                 "chat": f"{base}/dev/whatsapp",
                 "messages": f"{base}/dev/messages?to={quote(u.phone_number)}"}
                for u, w in people
            ],
            "chat": {
                "page": f"{base}/dev/whatsapp",
                "webhook": f"{base}/whatsapp/webhook",
                "whatsapp_number": rt.settings.whatsapp_number,
                "try": ["HI", "BAL", "SEND 5 USD 0886100002", "4"],
                "note": "Open the page: it opens on the first phone above (type the other to "
                        "switch) and say HI. Your login code arrives in the chat.",
            },
        }
