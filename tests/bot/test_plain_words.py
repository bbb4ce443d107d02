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
    from workers import transfers as transfer_sweeps

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
    transfer_sweeps.expire_due(runtime, utcnow() + timedelta(hours=runtime.settings.claim_window_hours, seconds=1))
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
    from workers import transfers as transfer_sweeps

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
    transfer_sweeps.expire_due(runtime, utcnow() + timedelta(hours=runtime.settings.claim_window_hours, seconds=1))

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


@pytest.mark.parametrize("word", ["stop", "exit", "Quit", "back", "no", "NO."])
def test_leaving_words_leave_a_question_like_cancel(person, runtime, word):
    a = person(A, usd=10_00)
    a.says("2")
    out = a.says(word)
    assert "Cancelled. Nothing was sent." in out and "1 Balance" in out
    a.says("SEND 5 USD")                                   # at the number
    assert "Cancelled. Nothing was sent." in a.says(word)
    a.says("6")                                            # the PIN change
    assert "Your PIN was not changed." in a.says(word)
    assert "didn't get that" in a.says("abc"), "back at the menu"


def test_no_at_a_yes_no_question_still_means_no(person, phone):
    a = person(A, usd=10_00)
    a.says("SEND 5 USD 0886123456")
    assert "Cancelled. Nothing was sent." in a.says("no")
    a.send_money("SEND 2 USD 0776543210")
    c = phone(C)
    c.login()                                              # ends at the offer
    assert "Claim it any time" in c.says("no")


def test_stop_while_logging_in_stops(phone):
    b = phone(B)
    b.says("HI")
    assert "Send HI whenever you want to log in" in b.says("stop")


@pytest.mark.parametrize("setup, wrong", [
    (["2"], "abc"),                                        # the amount
    (["2", "5"], "euros"),                                 # the currency
    (["2", "5 usd"], "12"),                                # the number
    (["SEND 5 USD 0886123456"], "maybe"),                  # the confirmation
    (["3", "10 usd"], "9"),                                # the mobile money choice
    (["5"], "x" * 50),                                     # the claim code
    (["6"], "ab"),                                         # the new PIN
])
def test_a_question_asked_again_reminds_that_cancel_stops(person, setup, wrong):
    a = person(A, usd=10_00)
    for text in setup:
        a.says(text)
    assert "CANCEL" in a.says(wrong)


def test_an_answer_just_after_a_step_timed_out(person, runtime):
    from sqlalchemy import select, update

    from core.messaging.conversations import Conversation
    from core.wallets.transfers import Transfer

    a = person(A, usd=10_00)
    a.says("SEND 5 USD 0886123456")
    with runtime.uow() as uow:
        uow.session.execute(update(Conversation).where(Conversation.phone_number == A)
                            .values(last_inbound_at=utcnow() - timedelta(minutes=11)))
        uow.commit()
    out = a.send("1")                                      # YES, too late
    assert len(out) == 2 and "timed out" in out[0] and "1 Balance" in out[1], out
    assert "didn't get that" not in "".join(out)
    with runtime.uow() as uow:
        assert uow.session.scalars(select(Transfer)).all() == []


@pytest.mark.parametrize("word", ["thank you", "Thanks!", "ok", "👍", "👍🏾", "okay", "no"])
def test_thanks_and_ok_get_a_short_friendly_answer(person, word):
    a = person(A)
    out = a.send(word)
    assert len(out) == 1 and "didn't get that" not in out[0] and "1 Balance" not in out[0], out
    assert "MENU" in out[0]


def test_after_a_send_a_balance_or_a_claim_one_line_offers_the_next_step(person, phone):
    a = person(A, usd=10_00)
    out = a.send("BAL")
    assert out[-1] == "Reply 2 to send money or 3 to add money."
    out = a.says("SEND 1 USD 0776543210") and a.says("1") and a.send(PIN)
    assert out[-1] == "Reply BAL for your balance or 2 to send more."
    c = phone(C)
    c.login()
    out = c.send("1")
    assert "You claimed US$1.00" in out[0] and out[-1] == "Reply BAL for your balance or 2 to send it on."
    a.says("2")
    assert "Reply 2 to send" not in a.says("BAL"), "mid-flow the question comes back instead"
