"""The chat in words a consumer understands (issue 12): amounts that name their currency,
no internal ids, names both ways, ordinary words read as people mean them, and a next
step offered. Whole conversations through the signed webhook."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

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


def test_recipients_see_the_sender_as_the_sender_sees_them(phone, person, runtime):
    a, b = person(A, "Musu", usd=100_00), person(B, "Kollie")
    assert "to +231886123456 (Kollie)?" in a.says("SEND 5 USD 0886123456")
    a.says("1")
    a.says(PIN)
    assert "You received US$5.00 from +231881234567 (Musu)" in b.outbox()[-1]

    a.send_money("SEND 2 USD 0776543210")
    c = phone(C, "Comfort")
    assert "+231881234567 (Musu) sent you US$2.00" in c.outbox()[-1]
    assert "+231881234567 (Musu) sent you US$2.00" in c.says("HI")
    c.says(c.code())
    c.says(PIN)
    assert "US$2.00 from +231881234567 (Musu)" in c.says(PIN)
    c.says("1")
    assert "+231776543210 (Comfort) claimed the US$2.00" in a.outbox()[-1]


def test_balance_and_history_speak_of_people_and_amounts_not_ids(phone, person, runtime):
    """Each history line says who and what, with the transfer's status as it is now; a
    reference appears once, in the receipt of the action."""
    from core.wallets import claims

    a, b = person(A, "Musu", usd=100_00), person(B, "Kollie")
    assert "Ref tr_" in a.send_money("SEND 5 USD 0886123456")      # the receipt
    a.send_money("SEND 2 USD 0776543210")
    a.send_money("SEND 1 USD 0776543211")
    c = phone(C, "Comfort")
    assert "tr_" not in c.says("HI")                                   # money waiting: no ids
    c.says(c.code())
    c.says(PIN)
    assert "tr_" not in c.says(PIN)                                    # the offer: no ids
    c.says("1")
    claims.expire_due(runtime, utcnow() + timedelta(hours=runtime.settings.claim_window_hours, seconds=1))

    out = a.says("BAL")
    assert "US$93.00" in out and "wal_" not in out
    out = a.says("4")
    assert "-US$5.00" in out and "sent to +231886123456 (Kollie)" in out
    assert "sent to +231776543210 (Comfort), claimed" in out and "waiting" not in out
    assert "sent to +231776543211, not claimed" in out
    assert "+US$1.00" in out and "back from +231776543211, not claimed" in out
    assert not re.search(r"\b(tr|dep|adj|wal|txn)_", out), out
    assert "received from +231881234567 (Musu)" in b.says("4")
    assert "claimed, from +231881234567 (Musu)" in c.says("4")


def test_waiting_for_a_claim_is_said_until_it_is_claimed(person, runtime):
    a = person(A, "Musu", usd=10_00)
    a.send_money("SEND 2 USD 0776543210")
    assert "sent to +231776543210, waiting for their claim" in a.says("4")


def test_history_says_where_added_money_came_from(person, runtime):
    a = person(A)
    a.says("3")
    a.says("10 USD")
    a.says("1")
    a.says("0881111000")
    a.says("1")
    assert "Ref dep_" in a.says(PIN)
    out = a.says("4")
    assert "+US$10.00" in out and "added from MTN MoMo" in out and "dep_" not in out


def test_the_claim_message_says_the_real_claim_window(person, phone, runtime, monkeypatch):
    import dataclasses

    a = person(A, usd=10_00)
    for hours, said in ((36, "within 36 hours"), (1, "within 1 hour"), (48, "within 2 days")):
        monkeypatch.setattr(runtime, "settings", dataclasses.replace(runtime.settings, claim_window_hours=hours))
        out = a.send_money("SEND 1 USD 0776543210")
        assert f"isn't claimed {said}" in out, out
        assert f"Claim it {said}" in phone(C).outbox()[-1]


def test_send_money_starts_a_send(person):
    a = person(A, usd=10_00)
    out = a.says("send money")
    assert "How much do you want to send?" in out and "not MONEY" not in out


def test_send_a_dollar_to_a_number_in_words(person):
    b, _ = person(B, usd=10_00), person(A, "Musu")
    out = b.says("send $1 to 0881234567")
    assert "Send US$1.00 to +231881234567 (Musu)?" in out and "Soxara sends" not in out


@pytest.mark.parametrize("typed", ["5 usd", "usd 5", "5 USD", "US$5", "5 us dollars", "$5"])
def test_an_amount_with_its_currency_in_words(person, typed):
    a = person(A, usd=10_00)
    a.says("2")
    assert "Who gets US$5.00?" in a.says(typed)


def test_dollars_alone_are_asked_about_plainly(person):
    a = person(A, usd=10_00, lrd=1_000_00)
    a.says("2")
    out = a.says("5 dollars")
    assert "US dollars or Liberian dollars?" in out and "not DOLLARS" not in out
    assert "Who gets L$5.00?" in a.says("liberian dollars")
    out = a.says("send 5 dollars to 0886123456")
    assert "US dollars or Liberian dollars?" in out
    assert "Send US$5.00 to +231886123456?" in a.says("1")


@pytest.mark.parametrize("typed, who", [("5 usd", "US$5.00"), ("usd 5", "US$5.00"), ("L$500", "L$500.00")])
def test_an_amount_with_its_currency_at_the_menu_starts_a_send(person, typed, who):
    a = person(A, usd=10_00, lrd=1_000_00)
    out = a.says(typed)
    assert f"Who gets {who}?" in out and "didn't get that" not in out
