"""Bad input: each gets a clear reply (or a 403), nothing crashes, nothing moves."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from core.wallets import ledger
from core.wallets.transfers import Transfer
from tests.bot.conftest import PIN, balance, fund

A, B = "+231881234567", "+231886123456"


@pytest.fixture
def a(phone, runtime):
    """A logged-in user with $100.00, at the main menu."""
    p = phone(A, "Musu")
    p.login()
    fund(runtime, A, 100_00)
    return p


def _nothing_moved(runtime):
    assert balance(runtime, A) == 100_00
    with runtime.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Transfer)) == 0
        assert ledger.check(uow) == []


@pytest.mark.parametrize("body, expect", [
    ("", "didn't get that"),
    ("   ", "didn't get that"),
    ("😀🇱🇷💸", "didn't get that"),
    ("x" * 5000, "didn't get that"),
    ("SEND", "How much"),
    ("12", "didn't get that"),
    ("DROP TABLE users;", "didn't get that"),
    ("\u0000\u202e", "didn't get that"),
])
def test_nonsense_at_the_menu_gets_a_re_prompt(a, runtime, body, expect):
    out = a.send(body)
    assert out, "never silence"
    assert expect in "\n".join(out)
    _nothing_moved(runtime)


def test_a_media_only_message_is_answered(a, runtime):
    out = a.says("", NumMedia=1, MediaUrl0="https://api.twilio.com/x.jpg",
                 MediaContentType0="image/jpeg")
    assert "only read text" in out and "1 Balance" in out
    _nothing_moved(runtime)


def test_media_only_while_logged_out_is_answered(phone):
    out = phone(B).says("", NumMedia=2)
    assert "only read text" in out


@pytest.mark.parametrize("amount, expect", [
    ("12.345", "at most two decimals"),
    ("-5", "more than zero"),
    ("0", "more than zero"),
    ("abc", "like 12.50"),
    ("12,50", "a dot for cents"),
    ("1e5", "like 12.50"),
    ("99999999999999", "too large"),
    ("😀", "like 12.50"),
])
def test_bad_amounts_are_refused_with_a_reason(a, runtime, amount, expect):
    a.says("2")
    out = a.says(amount)
    assert expect in out
    assert "US dollars or Liberian dollars" in a.says("5")  # the step still waits for an amount
    _nothing_moved(runtime)


def test_a_thousands_separator_is_read_as_thousands(a, runtime):
    fund(runtime, A, 2_000_00, "LRD")
    out = a.says("SEND 1,000 LRD 0886123456")
    assert "L$1,000.00" in out


@pytest.mark.parametrize("number, expect", [
    ("+14155552671", "only to Liberian numbers"),
    ("+2348031234567", "only to Liberian numbers"),
    ("+442071838750", "only to Liberian numbers"),
    ("12345", "doesn't look like a phone number"),
    ("call me", "doesn't look like a phone number"),
    ("0881234567", "your own number"),
    ("+231 88 123 4567", "your own number"),
])
def test_bad_recipients_are_refused_with_a_reason(a, runtime, number, expect):
    a.says("2")
    a.says("5 USD")
    assert expect in a.says(number)
    _nothing_moved(runtime)


def test_shortcut_with_a_foreign_number_asks_for_a_liberian_one(a, runtime):
    out = a.says("SEND 5 USD +14155552671")
    assert "only to Liberian numbers" in out
    assert "Send US$5.00 to +231886123456?" in a.says("0886123456")


def test_shortcut_with_a_bad_amount(a, runtime):
    assert "at most two decimals" in a.says("SEND 12.345 USD 0886123456")
    assert "more than zero" in a.says("SEND -5 USD 0886123456")
    _nothing_moved(runtime)


def test_more_than_the_balance_is_said_before_the_pin_and_nothing_moves(a, runtime):
    out = a.says("SEND 500 USD 0886123456")
    assert "Not enough USD" in out and "US$100.00" in out and "How much" in out
    assert "Enter your PIN" not in out
    _nothing_moved(runtime)


def test_a_wrong_pin_three_times_locks_pin_use(a, runtime):
    a.says("SEND 10 USD 0886123456")
    a.says("1")
    assert "2 tries left" in a.says("0000")
    assert "1 try left" in a.says("1111")
    out = a.says("2222")
    assert "locked for 15 minutes" in out
    # Locked: even the right PIN is refused for now.
    a.says("SEND 10 USD 0886123456")
    a.says("1")
    assert "locked" in a.says(PIN)
    _nothing_moved(runtime)


def test_letters_at_the_pin_step_are_not_a_try(a, runtime):
    a.says("SEND 10 USD 0886123456")
    a.says("1")
    out = a.says("YES")
    assert "4 to 6 digits" in out
    assert "2 tries left" in a.says("0000")  # "YES" was not counted
    _nothing_moved(runtime)


def test_a_wrong_login_code_five_times_burns_it(phone):
    p = phone(B)
    p.says("HI")
    right = p.code()
    wrong = "000000" if right != "000000" else "111111"
    for _ in range(4):
        assert "not right" in p.says(wrong)
    assert "expired or was tried too often" in p.says(wrong)
    assert "expired or was tried too often" in p.says(right)
    assert "new code" in p.says("NEW")
    assert "logged in" in p.says(p.code())


def test_an_unsigned_request_is_403(phone, runtime):
    p = phone(A)
    r = p.post(p.form("SEND 5 USD 0886123456"), signature=None)
    assert r.status_code == 403


def test_nothing_before_login_reveals_or_moves_anything(phone, runtime):
    fund(runtime, A, 100_00)
    p = phone(A)
    out = p.says("BAL")
    assert "US$100.00" not in out and "code" in out
    out = p.says("SEND 5 USD 0886123456")
    assert "Send US$5.00" not in out
    _nothing_moved(runtime)


def test_a_number_from_another_country_can_chat_but_pays_in_only_from_liberian_momo(phone, runtime):
    us = phone("+14155552671", "Diaspora")
    us.login()
    assert "1 Balance" in us.says("MENU")
    us.says("3")
    us.says("10 USD")
    us.says("1")
    assert "Liberian numbers only" in us.says("1")
    assert "Add US$10.00 from MTN MoMo +231881111000?" in us.says("0881111000")


def test_a_long_lockout_is_told_in_hours():
    from bot import copy

    assert "locked for 15 minutes" in copy.pin_locked(900)
    assert "locked for 2 hours" in copy.pin_locked(7200) and "locked for 24 hours" in copy.pin_locked(86400)


def test_a_shortcut_with_a_bad_amount_keeps_the_number_and_asks_for_the_amount(a, runtime):
    out = a.says("SEND 0 USD 0886123456")
    assert "more than zero" in out and "How much" in out, "an error and the next step"
    assert "Send US$5.00 to +231886123456?" in a.says("5"), "the number was kept"
    _nothing_moved(runtime)


def test_a_shortcut_with_a_bad_number_and_no_currency_takes_the_number_it_asks_for(a, runtime):
    assert "doesn't look like a phone number" in a.says("SEND 5 0886200")
    assert "US dollars or Liberian dollars?" in a.says("0886123456")
    assert "Send US$5.00 to +231886123456?" in a.says("1")
    _nothing_moved(runtime)


def test_a_currency_soxara_does_not_send_is_said_not_dropped(a, runtime):
    out = a.says("SEND 5 EUR 0886123456")
    assert "USD or LRD, not EUR" in out and "US dollars or Liberian dollars?" in out
    assert "Send US$5.00 to +231886123456?" in a.says("1")
    assert "USD or LRD, not GBP" in a.says("SEND GBP 5 0886123456")
    _nothing_moved(runtime)


def test_the_bots_own_number_is_no_recipient(a, runtime):
    out = a.says("SEND 1 USD 0770000000")
    assert "this chat's own number" in out
    _nothing_moved(runtime)


def test_no_and_a_refusal_end_at_the_menu(a, runtime):
    from core.wallets import adjustments, wallets

    a.says("SEND 5 USD 0886123456")
    assert "What would you like to do?" in a.says("2")
    a.says("SEND 50 USD 0886123456")
    a.says("1")
    with runtime.uow() as uow:  # the money goes elsewhere between the confirmation and the PIN
        w = wallets.find_wallet(uow, wallets.USER, _user_id(runtime), "USD", False)
        adjustments.adjust(uow, wallet_id=w.id, amount=-60_00, reason="chargeback")
        uow.commit()
    out = a.says(PIN)
    assert "Not enough USD" in out and "US$40.00" in out and "What would you like to do?" in out
    assert balance(runtime, A) == 40_00


def _user_id(runtime) -> str:
    from core.identity import users

    with runtime.uow() as uow:
        u = users.find_by_phone(uow, A)
        assert u is not None
        return u.id


def test_a_profile_name_cannot_add_lines_to_someone_elses_confirmation(phone, a, runtime):
    phone(B, "K\n\nSend $1.00 (USD) to Kollie?\r\tok").send("HI")
    out = a.says("SEND 100 USD 0886123456")
    assert "Send US$100.00 to +231886123456 (K Send $1.00 (USD) to" in out
    assert "\n\nSend $1.00" not in out


# Bidirectional controls (RLO, LRI, PDI, LRM…), zero-width and other invisible characters
# a WhatsApp profile name can carry. Shown raw, "‮00.001$ dneS" reads "Send $100.00".
BIDI_NAME = "\u2066Kol\u200blie\u2069 \u202e00.001$ dneS\u202c\u200e\ufeff\u2068\u061c"
BIDI_SHOWN = "Kollie 00.001$ dneS"


def _invisible(text: str) -> list[str]:
    import unicodedata

    return [f"U+{ord(ch):04X}" for ch in text
            if unicodedata.category(ch) in ("Cf", "Co", "Cs") or (unicodedata.category(ch) == "Cc" and ch != "\n")]


def test_a_bidi_profile_name_is_shown_cleaned_in_someone_elses_confirmation(phone, a, runtime):
    from core.identity import users

    phone(B, BIDI_NAME).send("HI")
    with runtime.uow() as uow:
        assert users.find_by_phone(uow, B).profile_name == BIDI_SHOWN, "stored cleaned"
    before = len(a.outbox())
    a.says("SEND 5 USD 0886123456")
    a.says("1")
    a.says(PIN)
    seen = a.outbox()[before:]
    assert any(f"Send US$5.00 to +231886123456 ({BIDI_SHOWN})?" in m for m in seen), seen
    assert any(f"Type your PIN to send US$5.00 to +231886123456 ({BIDI_SHOWN})" in m for m in seen)
    assert any(f"Sent US$5.00 to +231886123456 ({BIDI_SHOWN})" in m for m in seen)
    assert _invisible("\n".join(seen)) == []


def test_a_bad_name_stored_before_names_were_cleaned_is_cleaned_when_shown(phone, a, runtime):
    from core.identity import users

    phone(B).send("HI")
    with runtime.uow() as uow:
        users.find_by_phone(uow, B).profile_name = BIDI_NAME
        uow.commit()
    out = a.says("SEND 5 USD 0886123456")
    assert f"+231886123456 ({BIDI_SHOWN})?" in out and _invisible(out) == []


def test_the_greeting_shows_the_name_cleaned(phone):
    out = phone(B, "\u202eeisuM\u202c\u200b Kollie").says("HI")
    assert "Welcome to Soxara, eisuM!" in out and _invisible(out) == []


def test_a_merchants_name_is_cleaned_where_people_read_it(runtime, phone, client):
    from core.merchants import merchants
    from core.wallets import adjustments, wallets
    from tests.conftest import Api, create_merchant

    mid, key = create_merchant(runtime)
    with runtime.uow() as uow:  # a name stored before names were cleaned, and money to pay out
        uow.session.get(merchants.Merchant, mid).name = "Shop\u202e 00.001$\u202c\u2066"
        w = wallets.wallet_for(uow, wallets.MERCHANT, mid, "USD", False)
        uow.session.flush()
        adjustments.adjust(uow, wallet_id=w.id, amount=50_00, reason="float")
        uow.commit()
    b = phone(B)
    b.send("HI")  # B is a user: the payout lands at once
    before = len(b.outbox())
    r = Api(client, key).post("/v1/transfers", {"amount": 5_00, "currency": "USD", "to_phone_number": B})
    assert r.status_code == 201, r.get_json()
    (notice,) = b.outbox()[before:]
    assert "You received US$5.00 from Shop 00.001$." in notice and _invisible(notice) == []
    with runtime.uow() as uow:  # and new names are stored cleaned
        assert merchants.create_merchant(uow, "\u202eLEC\u202c\u200b Prepaid\n").name == "LEC Prepaid"
