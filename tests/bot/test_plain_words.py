"""The chat in words a consumer understands (issue 12): amounts that name their currency,
no internal ids, names both ways, ordinary words read as people mean them, and a next
step offered. Whole conversations through the signed webhook."""

from __future__ import annotations

import re
from datetime import timedelta

from core.db import utcnow
from tests.bot.conftest import PIN

A, B, C, D = "+231881234567", "+231886123456", "+231776543210", "+231776543211"

# An amount that does not say which dollar: `$5.00`, or the old `LRD 1,000.00`.
BARE = re.compile(r"(?<![A-Z])\$\d|\b(?:USD|LRD) \d")


def test_every_amount_the_chat_shows_names_its_currency(phone, person, runtime):
    from core.wallets import claims

    a, b = person(A, "Musu", usd=100_00, lrd=5_000_00), person(B, "Kollie")
    out = a.says("BAL")
    assert "US$100.00" in out and "L$5,000.00" in out
    out = a.says("SEND $5 0886123456")                   # `$` typed: US dollars, and said so
    assert "Send US$5.00 to +231886123456 (Kollie)?" in out
    a.says("1")
    assert "Sent US$5.00" in a.says(PIN)
    a.send_money("SEND 1000 LRD 0776543210")             # waits for C, who claims it
    a.send_money("SEND 2 USD 0776543211")                # waits for D, who never does
    c = phone(C)
    c.login()
    c.says("1")
    claims.expire_due(runtime, utcnow() + timedelta(hours=runtime.settings.claim_window_hours, seconds=1))
    a.says("3")                                          # add money: requested, then settled
    a.says("10 USD")
    a.says("1")
    a.says("0881111000")
    a.says("1")
    a.says(PIN)
    a.says("4")

    said = {p.number: p.outbox() for p in (a, b, c, phone(D))}
    everything = "\n".join(m for ms in said.values() for m in ms)
    for wanted in ("You received US$5.00", "sent you L$1,000.00", "You claimed L$1,000.00",
                   "claimed the L$1,000.00", "did not claim the US$2.00", "Added US$10.00"):
        assert wanted in everything, wanted
    assert BARE.findall(everything) == [], [m for m in everything.split("\n") if BARE.search(m)]
