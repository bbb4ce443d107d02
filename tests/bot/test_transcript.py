"""The transcript support reads: every message both ways, PINs, OTPs and cards masked before storage."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from core.messaging import conversations
from core.messaging.conversations import InboundMessage, mask_cards, mask_inbound
from tests.bot.conftest import PIN, fund

A = "+231881234567"


def _stored_text(runtime) -> str:
    """Every text column of every conversation-related row, raw from the database."""
    with runtime.uow() as uow:
        rows = uow.session.execute(text("SELECT body FROM inbound_messages")).scalars().all()
        rows += uow.session.execute(text("SELECT body FROM outbound_messages")).scalars().all()
        rows += uow.session.execute(text("SELECT data FROM conversations")).scalars().all()
    return "\n".join(rows)


def test_pins_and_codes_never_reach_the_tables_in_clear(phone, runtime):
    a = phone(A)
    a.send("HI")
    code = a.code()
    a.login()  # HI again, a fresh code, the PIN twice
    fresh = a.code()
    fund(runtime, A, 10_00)
    a.says("SEND 1 USD 0886123456")
    a.says("YES")
    a.says(PIN)
    a.says(PIN)  # sent twice: the copy that arrives at the menu is masked too
    stored = _stored_text(runtime)
    assert PIN not in stored
    assert code not in stored and fresh not in stored
    with runtime.uow() as uow:
        bodies = list(uow.session.scalars(select(InboundMessage.body).order_by(InboundMessage.seq)))
    assert bodies.count("••••") >= 5
    assert "HI" in bodies and "SEND 1 USD 0886123456" in bodies and "YES" in bodies


def test_card_numbers_are_masked_wherever_they_are_typed(phone, runtime):
    a = phone(A)
    a.login()
    a.says("my card is 4242 4242 4242 4242 and 4000-0000-0000-0002 ok")
    a.says("2")
    a.says("5555555555554444")  # at a step expecting a number
    stored = _stored_text(runtime)
    for card in ("4242 4242 4242 4242", "4242424242424242", "4000-0000-0000-0002", "5555555555554444"):
        assert card not in stored
    assert "my card is ••••4242 and ••••0002 ok" in stored


def test_keywords_typed_at_a_secret_step_stay_readable(phone, runtime):
    a = phone(A)
    a.says("HI")
    a.says("HELP")  # at the login-code step
    with runtime.uow() as uow:
        bodies = list(uow.session.scalars(select(InboundMessage.body)))
    assert "HELP" in bodies


def test_the_transcript_reads_both_ways_in_order(phone, runtime):
    a = phone(A, "Musu")
    a.login()
    a.says("BAL")
    with runtime.uow() as uow:
        lines = conversations.transcript(uow, A)
    assert [(line.direction, line.body[:12]) for line in lines[:5]] == [
        ("in", "HI"), ("out", "Welcome to S"), ("out", "Your Soxara "), ("out", "To log in, r"),
        ("in", "••••"),
    ]
    assert "Your Soxara code is ••••" in lines[2].body
    assert lines[-3].direction == "in" and lines[-3].body == "BAL"
    assert lines[-2].direction == "out" and "Your balance" in lines[-2].body
    assert lines[-1].direction == "out" and "to send money" in lines[-1].body
    assert all(PIN not in line.body for line in lines)


@pytest.mark.parametrize("body, kw", [
    ("4821", dict(expects_secret=True)),
    ("  123456 ", dict(expects_secret=True)),
    ("my pin is 4821", dict(expects_secret=True)),
    ("4821", dict(expects_secret=False)),
    ("12345678", dict(expects_secret=False)),
])
def test_mask_inbound_masks_secrets(body, kw):
    assert mask_inbound(body, **kw) == "••••"


@pytest.mark.parametrize("body, kw, kept", [
    ("CANCEL", dict(expects_secret=True, keywords=frozenset({"CANCEL"})), "CANCEL"),
    ("1000", dict(expects_secret=False, numbers_expected=True), "1000"),
    ("1", dict(expects_secret=False), "1"),
    ("+231881234567", dict(expects_secret=False, numbers_expected=True), "+231881234567"),
    ("SEND 12.50 USD 0881234567", dict(expects_secret=False), "SEND 12.50 USD 0881234567"),
])
def test_mask_inbound_keeps_ordinary_answers(body, kw, kept):
    assert mask_inbound(body, **kw) == kept


def test_mask_cards():
    assert mask_cards("4242424242424242") == "••••4242"
    assert mask_cards("pay 4000 0027 6000 3184 now") == "pay ••••3184 now"
    assert mask_cards("+2348031234567") == "+2348031234567"  # an E.164 number is not a card
    assert mask_cards("tr_00VcCkiRURo7eBsuam2CbR4L") == "tr_00VcCkiRURo7eBsuam2CbR4L"
    assert mask_cards("123456789012") == "123456789012"        # 12 digits: too short for a card


def test_claim_codes_are_masked_in_the_transcript(phone, runtime):
    import re

    a = phone(A)
    a.login()
    fund(runtime, A, 10_00)
    a.says("SEND 5 USD 0776543210")
    a.says("1")
    a.says(PIN)
    revealed = phone("+231776543210").outbox()[-1]       # what the sandbox phone shows
    code = re.search(r"CLAIM ([A-Z0-9]{8})", revealed).group(1)
    assert code not in _stored_text(runtime)


def test_secrets_inside_other_text_or_oddly_spaced_cards_are_masked(phone, runtime):
    a = phone(A)
    a.login()
    code = a.code()
    for said in ("my pin is 4821", "4821.", code[:3] + " " + code[3:], "4242  4242  4242  4242",
                 "4242.4242.4242.4242", "4242\t4242\t4242\t4242"):
        a.says(said)
    stored = _stored_text(runtime)
    assert PIN not in stored and code[:3] + " " + code[3:] not in stored
    assert "4242  4242" not in stored and "4242.4242" not in stored and "4242\t4242" not in stored
    assert "my pin is ••••" in stored


def test_commands_keep_their_amount_and_number_and_mask_a_claim_code(phone, runtime):
    a = phone(A)
    a.login()
    a.says("SEND 100 0886200002")
    a.says("MENU")
    a.says("CLAIM DUKUUABJ")
    a.says("CLAIM")
    a.says("XKCDQWER")  # the code, answering "which code?"
    stored = _stored_text(runtime)
    assert "SEND 100 0886200002" in stored, "an amount beside a phone is no card (Luhn)"
    assert "DUKUUABJ" not in stored and "XKCDQWER" not in stored and "CLAIM ••••" in stored


def test_mask_inbound_rules():
    assert mask_inbound("SEND 9 USD 0886200002", expects_secret=True, command=True) == "SEND 9 USD 0886200002"
    assert mask_inbound("amount 1000", expects_secret=False, numbers_expected=True) == "amount 1000"
    assert mask_inbound("code 123 456 ok", expects_secret=False) == "code •••• ok"
    assert mask_cards("4242 4242 4242 4241") == "4242 4242 4242 4241", "fails Luhn: not a card"
