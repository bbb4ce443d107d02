"""Whole conversations through the real webhook, signed as Twilio signs them."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, select, update

from core.db import utcnow
from core.messaging.conversations import Conversation
from core.wallets import ledger
from core.wallets.transfers import Transfer
from tests.bot.conftest import PIN, balance, fund

A, B, C = "+231881234567", "+231886123456", "+231776543210"


def _ledger_ok(runtime):
    with runtime.uow() as uow:
        assert ledger.check(uow) == []


def _transfers(runtime) -> list[str]:
    """The status of every transfer, oldest first."""
    with runtime.uow() as uow:
        return list(uow.session.scalars(select(Transfer.status).order_by(Transfer.id)))


def _set(runtime, phone, **values):
    with runtime.uow() as uow:
        uow.session.execute(update(Conversation).where(Conversation.phone_number == phone).values(**values))
        uow.commit()


def _convo(runtime, phone) -> tuple[str, str]:
    """(state, data) of the phone's conversation."""
    with runtime.uow() as uow:
        c = uow.session.scalar(select(Conversation).where(Conversation.phone_number == phone))
        return c.state, c.data


def test_first_contact_logs_in_with_a_code_sent_into_the_chat(phone):
    a = phone(A, "Musu Kollie")
    out = a.send("hi")
    assert out[0].startswith("Welcome to Soxara, Musu!")
    assert re.search(r"Your Soxara code is \d{6}", out[1])
    assert "reply with the 6-digit code" in out[2]
    assert "not right" in a.says("000000" if a.code() != "000000" else "111111")
    out = a.says(a.code())
    assert "logged in" in out and "Choose a 4–6 digit PIN" in out
    assert "A PIN is 4 to 6 digits" in a.says("12")
    assert "same PIN again" in a.says(PIN)
    assert "don't match" in a.says("9999")
    assert "same PIN again" in a.says(PIN)
    out = a.says(PIN)
    assert "Your PIN is set" in out and "1 Balance" in out


def test_balance_and_recent_transactions_show_amounts_not_ids(phone, runtime):
    a = phone(A)
    a.login()
    wallet = fund(runtime, A, 1_234_50)
    out = a.says("BAL")
    assert "US$1,234.50" in out and wallet not in out and "L$0.00" in out
    out = a.says("1")
    assert "US$1,234.50" in out
    out = a.says("4")
    assert "+US$1,234.50  adjustment by Soxara" in out and "adj_" not in out


def test_two_users_send_to_each_other(phone, runtime):
    a, b = phone(A, "Musu"), phone(B, "Kollie")
    a.login()
    b.login()
    fund(runtime, A, 100_00)
    fund(runtime, B, 5_000_00, "LRD")

    # A, through the menu, step by step.
    assert "How much" in a.says("2")
    assert "US dollars or Liberian dollars" in a.says("12.50")
    assert "Who gets US$12.50" in a.says("USD")
    out = a.says("088 612 3456")
    assert "Send US$12.50 to +231886123456 (Kollie)?" in out and "1 YES" in out
    assert "Type your PIN" in a.says("YES")
    b_before = len(b.outbox())
    out = a.says(PIN)
    tr = re.search(r"Ref (tr_\w+)", out).group(1)
    assert "Sent US$12.50 to +231886123456 (Kollie)" in out
    assert any(tr in m and "You received US$12.50" in m for m in b.outbox()[b_before:])

    # B, with the shortcut, in LRD, to A's local number.
    out = b.says("SEND 1,000 LRD 0881234567")
    assert "Send L$1,000.00 to +231881234567 (Musu)?" in out
    b.says("1")
    out = b.says(PIN)
    assert "Sent L$1,000.00" in out and "Ref tr_" in out

    assert balance(runtime, A) == 87_50
    assert balance(runtime, B) == 12_50
    assert balance(runtime, A, "LRD") == 1_000_00
    assert balance(runtime, B, "LRD") == 4_000_00
    assert _transfers(runtime) == ["succeeded", "succeeded"]
    _ledger_ok(runtime)


def test_a_viral_send_is_claimed_by_a_new_number(phone, runtime):
    a = phone(A)
    a.login()
    fund(runtime, A, 50_00)
    a.says("SEND 20 USD 0776543210")
    out = a.says("1") and a.says(PIN)
    assert "isn't on Soxara yet" in out and "within 7 days" in out
    tr = re.search(r"Ref (tr_\w+)", out).group(1)

    c = phone(C, "Comfort")
    claim_msg = c.outbox()[-1]
    assert "sent you US$20.00" in claim_msg and "wa.me/231770000000" in claim_msg
    code = re.search(r"CLAIM ([A-Z0-9]{8})", claim_msg).group(1)

    # First contact: the waiting money is offered before and after the login.
    out = c.says("Hi")
    assert "Welcome to Soxara, Comfort!" in out and "sent you US$20.00" in out and tr not in out
    c.says(c.code())
    c.says(PIN)
    out = c.says(PIN)
    assert "Money is waiting for you" in out and tr not in out and "1 Claim it now" in out
    out = c.says(f"CLAIM {code}")                 # the code from the link works too
    assert "You claimed US$20.00" in out and tr in out
    assert balance(runtime, C) == 20_00 and balance(runtime, A) == 30_00
    assert "already claimed" in c.says(f"claim {code}")
    assert balance(runtime, C) == 20_00
    assert any("claimed the US$20.00" in m for m in a.outbox())
    _ledger_ok(runtime)


def test_money_sent_in_the_sandbox_waits_for_the_newcomer_to_claim_it(phone, runtime):
    """The viral claim can be tried by hand: the scheduler's sweeps, run well past the
    merchants' 10 s auto-claim, leave money a person sent waiting for its recipient."""
    from workers import scheduled

    a = phone(A)
    a.login()
    fund(runtime, A, 50_00)
    a.send_money("SEND 7.50 USD 0776543210")
    scheduled.tick(runtime, utcnow() + timedelta(minutes=2))
    assert _transfers(runtime) == ["pending_claim"]
    assert not any("claimed the" in m for m in a.outbox())

    c = phone(C, "Comfort")
    out = c.says("HI")
    assert "You claimed" not in out and "Log in to claim it" in out
    c.says(c.code())
    c.says(PIN)
    assert "Money is waiting for you" in c.says(PIN)
    assert "You claimed" in c.says("1")
    assert _transfers(runtime) == ["claimed"] and balance(runtime, C) == 7_50


def test_money_waiting_is_claimed_with_one_yes_after_login(phone, runtime):
    a, b = phone(A), phone(B)
    a.login()
    b.login()
    fund(runtime, A, 50_00)
    fund(runtime, B, 5_000_00, "LRD")
    a.says("SEND 20 USD 0776543210")
    a.says("1")
    a.says(PIN)
    b.says("SEND 1000 LRD 0776543210")
    b.says("1")
    b.says(PIN)

    c = phone(C, "Comfort")
    c.says("HI")
    c.says(c.code())
    c.says(PIN)
    out = c.says(PIN)
    assert "US$20.00 from +231881234567" in out and "L$1,000.00 from +231886123456" in out
    assert "1 Claim all now" in out
    out = c.says("YES")
    assert "You claimed US$20.00" in out and "You claimed L$1,000.00" in out
    assert balance(runtime, C) == 20_00 and balance(runtime, C, "LRD") == 1_000_00
    assert _transfers(runtime) == ["claimed", "claimed"]
    assert "Type the claim code" in c.says("5")   # nothing waiting any more
    _ledger_ok(runtime)


def test_money_waiting_can_wait_and_be_claimed_from_the_menu(phone, runtime):
    a = phone(A)
    a.login()
    fund(runtime, A, 50_00)
    a.says("SEND 20 USD 0776543210")
    a.says("1")
    a.says(PIN)
    c = phone(C)
    c.login()                                     # ends at the offer
    assert "reply 5" in c.says("2")
    assert balance(runtime, C) == 0
    assert "1 Claim it now" in c.says("5")
    assert "Nothing to cancel" not in c.says("CANCEL")
    c.says("5")
    assert "You claimed US$20.00" in c.says("1")
    assert "Type the claim code" in c.says("5")   # nothing waiting any more: ask for a code


def test_a_claim_link_used_before_login_is_claimed_after_it(phone, runtime):
    a = phone(A)
    a.login()
    fund(runtime, A, 10_00)
    a.says("SEND 5 USD 0776543210")
    a.says("YES")
    a.says(PIN)
    c = phone(C)
    code = re.search(r"CLAIM ([A-Z0-9]{8})", c.outbox()[-1]).group(1)
    c.says(f"CLAIM {code}")          # straight from the wa.me link
    c.says(c.code())
    c.says(PIN)
    out = c.says(PIN)
    assert "You claimed US$5.00" in out
    assert balance(runtime, C) == 5_00


def test_someone_elses_claim_code_claims_nothing(phone, runtime):
    a, b = phone(A), phone(B)
    a.login()
    b.login()
    fund(runtime, A, 10_00)
    a.says("SEND 5 USD 0776543210")
    a.says("1")
    a.says(PIN)
    code = re.search(r"CLAIM ([A-Z0-9]{8})", phone(C).outbox()[-1]).group(1)
    assert "No money with that code" in b.says(f"CLAIM {code}")
    assert balance(runtime, B) == 0


def test_a_pin_delivered_twice_moves_money_once(phone, runtime):
    a = phone(A)
    a.login()
    fund(runtime, A, 100_00)
    a.says("SEND 10 USD 0886123456")
    a.says("YES")
    a.says("YES")                    # a double tap on the confirmation
    out1 = a.says(PIN)
    out2 = a.says(PIN)               # the PIN again, as a new message (new MessageSid)
    assert "Ref tr_" in out1 and "Ref tr_" not in out2
    assert balance(runtime, A) == 90_00
    assert len(_transfers(runtime)) == 1


def test_the_pending_action_id_not_the_message_decides(phone, runtime):
    """Even if the dialog were put back at the PIN step, the same confirmation cannot pay twice."""
    a = phone(A)
    a.login()
    fund(runtime, A, 100_00)
    a.says("SEND 10 USD 0886123456")
    a.says("1")
    state, data = _convo(runtime, A)
    a.says(PIN)
    _set(runtime, A, state=state, data=data)   # the PIN step, same pending action
    assert "already done" in a.says(PIN)
    assert balance(runtime, A) == 90_00 and len(_transfers(runtime)) == 1


def test_keywords_work_at_every_step(phone, runtime):
    a = phone(A)
    a.login()
    fund(runtime, A, 100_00)
    a.says("2")
    a.says("15 USD")
    out = a.says("BAL")
    assert "US$100.00" in out and "Who gets US$15.00" in out          # balance, then back to the step
    out = a.says("help")
    assert "SEND 12.50 USD 0881234567" in out and "Who gets US$15.00" in out
    a.says("0886123456")
    out = a.says("CANCEL")
    assert "Nothing was sent" in out and "1 Balance" in out
    a.says("SEND 15 USD 0886123456")
    a.says("1")
    out = a.says("MENU")
    assert "1 Balance" in out
    assert "didn't get that" in a.says(PIN)                       # the flow is gone
    assert balance(runtime, A) == 100_00 and _transfers(runtime) == []


def test_no_at_the_confirmation_sends_nothing(phone, runtime):
    a = phone(A)
    a.login()
    fund(runtime, A, 100_00)
    a.says("SEND 15 USD 0886123456")
    assert "Reply 1 for YES or 2 for NO" in a.says("maybe")
    assert "Nothing was sent" in a.says("2")
    assert balance(runtime, A) == 100_00


def test_ten_idle_minutes_mid_flow_start_over(phone, runtime):
    a = phone(A)
    a.login()
    fund(runtime, A, 100_00)
    a.says("SEND 15 USD 0886123456")
    a.says("1")
    _set(runtime, A, last_inbound_at=utcnow() - timedelta(minutes=11))
    out = a.says(PIN)
    assert "timed out after 10 minutes" in out
    assert balance(runtime, A) == 100_00 and _transfers(runtime) == []


def test_a_session_expires_after_inactivity(phone, runtime):
    a = phone(A)
    a.login()
    fund(runtime, A, 100_00)
    _set(runtime, A, session_expires_at=utcnow() - timedelta(seconds=1),
         last_inbound_at=utcnow() - timedelta(minutes=31))
    out = a.says("BAL")
    assert "Welcome back" in out and "US$100.00" not in out
    out = a.says(a.code())
    assert "logged in" in out and "US$100.00" in out                 # BAL carried through the login


def test_logout(phone):
    a = phone(A)
    a.login()
    assert "logged out" in a.says("LOGOUT")
    assert "code" in a.says("BAL")


def test_add_money_from_mobile_money(phone, runtime):
    a = phone(A)
    a.login()
    assert "How much do you want to add" in a.says("3")
    assert "1 MTN MoMo" in a.says("10 USD")
    assert "This number (+231881234567)" in a.says("1")
    out = a.says("0881111000")        # the sandbox's always-succeeds MoMo number
    assert "Add US$10.00 from MTN MoMo +231881111000?" in out
    assert "Type your PIN" in a.says("1")
    out = a.says(PIN)
    dep = re.search(r"Ref (dep_\w+)", out).group(1)
    assert "Approve the US$10.00 request" in out
    assert any(dep in m and "Added US$10.00" in m for m in a.outbox())
    assert balance(runtime, A) == 10_00
    _ledger_ok(runtime)


def test_a_rejected_deposit_is_reported(phone, runtime):
    a = phone(A)
    a.login()
    a.says("3")
    a.says("LRD 500")
    a.says("2")
    a.says("0771111001")              # Orange: the customer rejects
    a.says("YES")
    a.says(PIN)
    assert any("failed" in m and "Nothing was taken" in m for m in a.outbox())
    assert balance(runtime, A, "LRD") == 0


def test_change_pin(phone, runtime):
    a = phone(A)
    a.login()
    fund(runtime, A, 10_00)
    assert "new 4–6 digit PIN" in a.says("6")
    a.says("5081")
    assert "current PIN" in a.says("5081")
    assert "Wrong PIN" in a.says("0000")
    assert "PIN is changed" in a.says(PIN)
    a.says("SEND 1 USD 0886123456")
    a.says("1")
    assert "Wrong PIN" in a.says(PIN)
    assert "Ref tr_" in a.says("5081")


def test_a_pin_anyone_would_guess_is_refused_in_the_chat_with_the_reason(phone, runtime):
    a = phone(A)
    a.says("HI")
    assert "Choose a 4–6 digit PIN" in a.says(a.code())
    for weak, why in (("1234", "run"), ("0000", "same digit"), ("1212", "repeat"),
                      ("234567", "your phone number")):
        out = a.says(weak)
        assert "can't be used" in out and why in out and "same PIN again" not in out, out
    assert "same PIN again" in a.says(PIN)
    assert "PIN is set" in a.says(PIN)
    a.says("6")                                        # the change refuses them too
    assert "can't be used" in a.says("2468")
    assert "same PIN again" in a.says("5081")


def test_a_pin_set_elsewhere_meanwhile_is_not_overwritten_by_the_chat(phone, runtime):
    """The chat asked for a first PIN; before it was typed twice, the app set one. The
    chat must not replace it without the current PIN."""
    from core.identity import pins, users

    a = phone(A)
    a.says("HI")
    assert "Choose a 4–6 digit PIN" in a.says(a.code())
    assert "same PIN again" in a.says("5081")
    with runtime.uow() as uow:
        pins.set_pin(uow, users.find_by_phone(uow, A).id, PIN)
        uow.commit()
    out = a.says("5081")
    assert "already has a PIN" in out and "1 Balance" in out, out
    fund(runtime, A, 10_00)
    a.says("SEND 1 USD 0886123456")
    a.says("1")
    assert "Wrong PIN" in a.says("5081")
    assert "Ref tr_" in a.says(PIN)


def test_help_and_unknown_input_never_go_unanswered(phone):
    a = phone(A)
    a.login()
    assert "SEND 12.50 USD 0881234567" in a.says("7")
    out = a.says("what is this")
    assert "didn't get that" in out and "1 Balance" in out


def test_one_conversation_per_phone(phone, runtime):
    a = phone(A)
    a.login()
    a.says("BAL")
    with runtime.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Conversation)) == 1
