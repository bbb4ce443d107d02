"""The bot as an engine and flows: the registry, the menu built from it, a flow started from
outside the chat, the states conversations already hold, and the once-only guard."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from sqlalchemy import select, update

from bot import dialog
from bot.flows import MenuEntry, Step, registry, steps
from bot.flows.base import Flow, Turn
from core.idempotency import IdempotencyRecord
from core.messaging.conversations import Conversation, InboundMessage
from core.wallets.transfers import Transfer
from tests.bot.conftest import PIN, balance, fund

A, B, C = "+231881234567", "+231886123456", "+231776543210"

# Every state a conversation could hold before the flows moved out of one class, with
# what the transcript did with an answer there: (secret, number expected).
STATES_BEFORE_FLOWS = {
    "new": (False, False), "logged_out": (False, False), "menu": (False, False),
    "login_code": (True, False), "pin_choose": (True, False), "pin_repeat": (True, False),
    "send_amount": (False, True), "send_currency": (False, False), "send_recipient": (False, True),
    "send_confirm": (False, False), "send_pin": (True, False),
    "add_amount": (False, True), "add_currency": (False, False), "add_method": (False, False),
    "add_phone": (False, True), "add_confirm": (False, False), "add_pin": (True, False),
    "claim_code": (True, True), "claim_offer": (False, False),
    "pin_change_new": (True, False), "pin_change_repeat": (True, False), "pin_change_current": (True, False),
    # Payment requests (issue 14).
    "approval_choose": (False, True), "approval_confirm": (False, False), "approval_pin": (True, False),
}


def _convo(runtime, phone) -> SimpleNamespace:
    """The phone's conversation row, as it is now."""
    with runtime.uow() as uow:
        c = uow.session.scalar(select(Conversation).where(Conversation.phone_number == phone))
        return SimpleNamespace(state=c.state, data=c.data, user_id=c.user_id)


def _inbound(runtime) -> list[str]:
    with runtime.uow() as uow:
        return list(uow.session.scalars(select(InboundMessage.body).order_by(InboundMessage.seq)))


def _transfers(runtime) -> int:
    with runtime.uow() as uow:
        return len(uow.session.scalars(select(Transfer.id)).all())


# --- a flow of the tests' own, registered the way a module in bot/flows/ registers ----------

approved: list[dict] = []


def _approve(turn: Turn):
    approved.append(dict(turn.values))
    return SimpleNamespace(id="tst_" + turn.values["action"][4:])


approval_pin = steps.pin_then_act(
    "test_approval_pin", lambda turn: f"Type your PIN to pay {turn.values['merchant']}.",
    act=_approve, done=lambda turn, outcome: turn.say(f"Paid {turn.values['merchant']}. Ref {outcome.id}"))
approval_confirm = steps.confirm(
    "test_approval_confirm", lambda turn: f"{turn.values['merchant']} asks for {turn.values['amount']}. 1 YES 2 NO",
    pin=approval_pin, cancelled="Declined.")


def _begin(turn: Turn, **values) -> None:
    turn.go(approval_confirm, **values)
    steps.ask_to_confirm(turn, approval_confirm)


test_approvals = Flow("test_approvals", steps=[approval_confirm, approval_pin], cancel="Declined.",
                      begin=_begin)


@pytest.fixture
def approvals_flow():
    approved.clear()
    registry.register(test_approvals)
    yield test_approvals
    registry.unregister(test_approvals.name)


@pytest.fixture
def tip_on_top():
    """A flow placed first on the menu: every other line moves down one."""
    said = []
    flow = Flow("test_tip", menu=MenuEntry(0, "Tip the team", frozenset({"TIP"})),
                begin=lambda turn, **values: said.append(turn.phone) or turn.say("Thanks for the tip!"))
    registry.register(flow)
    yield said
    registry.unregister(flow.name)


# --- the registry and the menu --------------------------------------------------------------


def test_every_state_a_conversation_holds_today_is_still_routed_and_masked_alike():
    for state, (secret, number) in STATES_BEFORE_FLOWS.items():
        step = registry.step(state)
        if state in ("new", "logged_out", "menu"):
            assert step is None and state in dialog.RESTING
            continue
        assert step is not None, state
        assert (step.secret, step.number) == (secret, number), state
    assert set(registry._steps) == set(STATES_BEFORE_FLOWS) - {"new", "logged_out", "menu"}


def test_the_menu_numbers_come_from_the_registered_flows(phone, runtime, tip_on_top):
    a = phone(A)
    a.login()
    out = a.says("MENU")
    assert "1 Tip the team\n2 Balance\n3 Send money" in out and "8 Help" in out
    assert "Thanks for the tip!" in a.says("TIP") and tip_on_top == [A]
    assert "Thanks for the tip!" in a.says("1")
    assert "Your balance" in a.says("2")
    assert "How much do you want to send" in a.says("3")
    a.says("MENU")
    assert "new 4–6 digit PIN" in a.says("7")
    a.says("CANCEL")
    fund(runtime, A, 10_00)
    a.says("SEND 5 USD 0776543210")
    a.says("1")
    a.says(PIN)
    c = phone(C)
    c.login()                                     # ends at the offer of the money waiting
    # "Later" names the claim line's number, which moved from 5 to 6, and 6 offers it.
    assert "reply 6 at the menu" in c.says("2")
    assert "1 Claim it now" in c.says("6")


def test_a_flow_cannot_take_a_place_or_a_state_already_taken():
    with pytest.raises(ValueError):
        registry.register(Flow("test_dup", menu=MenuEntry(2, "Again")))
    with pytest.raises(ValueError):
        registry.register(Flow("test_dup", steps=[Step("send_pin", lambda t, x: None, lambda t: "")]))
    assert "test_dup" not in registry.flows


def test_a_conversation_stored_mid_send_before_the_move_carries_on(phone, runtime):
    """A conversation waiting for its PIN when the new code is deployed: same state name,
    same values, the send goes through once."""
    a = phone(A)
    a.login()
    fund(runtime, A, 20_00)
    data = json.dumps({"action": "act_beforethemove", "amount": 500, "currency": "USD",
                       "label": "+231886123456", "to": B}, separators=(",", ":"), sort_keys=True)
    with runtime.uow() as uow:
        uow.session.execute(update(Conversation).where(Conversation.phone_number == A)
                            .values(state="send_pin", data=data))
        uow.commit()
    out = a.says(PIN)
    assert "+231886123456 isn't on Soxara yet" in out and "Ref tr_" in out
    assert balance(runtime, A) == 15_00 and _transfers(runtime) == 1


# --- a flow started from outside the menu ----------------------------------------------------


def _start(runtime, phone_number, **values) -> bool:
    with runtime.uow() as uow:
        started = dialog.start_flow(uow, runtime, phone_number, "test_approvals", **values)
        uow.commit()
    return started


def test_a_flow_is_started_from_outside_the_chat_and_answered_in_it(phone, runtime, approvals_flow):
    a = phone(A)
    a.login()
    a.says("2")                                   # in the middle of a send
    before = len(a.outbox())
    assert _start(runtime, A, merchant="LEC", amount="$12.00")
    assert a.outbox()[before:] == ["LEC asks for $12.00. 1 YES 2 NO"]
    assert _convo(runtime, A).state == "test_approval_confirm"
    assert "Type your PIN to pay LEC" in a.says("YES")
    out = a.says(PIN)
    assert "Paid LEC. Ref tst_" in out
    assert len(approved) == 1 and approved[0]["merchant"] == "LEC"
    assert _inbound(runtime)[-1] == "••••"        # its PIN step is masked like any other
    assert "didn't get that" in a.says(PIN)       # the PIN again: at the menu, nothing runs twice
    assert len(approved) == 1


def test_a_flow_started_from_outside_says_cancel_its_own_way(phone, runtime, approvals_flow):
    a = phone(A)
    a.login()
    assert _start(runtime, A, merchant="LWSC", amount="$3.00")
    out = a.says("CANCEL")
    assert "Declined." in out and "1 Balance" in out and approved == []


def test_a_flow_is_not_started_for_a_phone_that_is_not_logged_in(phone, runtime, approvals_flow):
    a = phone(A)
    a.says("HI")                                  # known, waiting for the code
    before = (_convo(runtime, A).state, len(a.outbox()))
    assert not _start(runtime, A, merchant="LEC", amount="$1.00")
    assert not _start(runtime, B, merchant="LEC", amount="$1.00")   # never wrote at all
    assert (_convo(runtime, A).state, len(a.outbox())) == before
    assert phone(B).outbox() == []


# --- the once-only guard is core's idempotency ----------------------------------------------


def _at_the_pin_step(phone, runtime, send: str = "SEND 5 USD 0886123456"):
    """A logged in with $20.00 and a send confirmed: (A, its wallet, its user id, the
    pending action's id)."""
    a = phone(A)
    a.login()
    wallet = fund(runtime, A, 20_00)
    a.says(send)
    a.says("1")
    convo = _convo(runtime, A)
    return a, wallet, convo.user_id, json.loads(convo.data)["action"]


def test_a_confirmation_is_recorded_as_an_idempotency_record_of_the_user(phone, runtime):
    a, _, user_id, action = _at_the_pin_step(phone, runtime)
    a.says(PIN)
    with runtime.uow() as uow:
        rec = uow.session.scalar(select(IdempotencyRecord).where(IdempotencyRecord.key == action))
        assert rec.scope == f"bot:{user_id}"
        assert rec.status == "done" and rec.response_status == 200


def test_a_confirmation_whose_key_is_taken_elsewhere_does_not_run(phone, runtime):
    """The same claim the API makes holds the bot's key too: while another holder has it
    (on PostgreSQL its transaction's lock, on SQLite its running record), the PIN moves
    nothing and says the approval is under way."""
    a, _, user_id, action = _at_the_pin_step(phone, runtime)
    with runtime.uow() as holder:
        claim = runtime.idempotency.claim(holder, f"bot:{user_id}", action, "elsewhere")
        assert claim.outcome == "run"
        out = a.says(PIN)
    assert balance(runtime, A) == 20_00 and _transfers(runtime) == 0
    assert "already under way" in out


def test_a_refused_confirmation_gives_its_key_back(phone, runtime):
    """Core refuses (the money went meanwhile): nothing moves, and no record of the action
    is left behind, running or done."""
    from core.wallets import adjustments

    a, wallet, _, action = _at_the_pin_step(phone, runtime, "SEND 15 USD 0886123456")
    with runtime.uow() as uow:
        adjustments.adjust(uow, wallet_id=wallet, amount=-10_00, reason="test: spent meanwhile")
        uow.commit()
    out = a.says(PIN)
    assert "Not enough USD for that. You have US$10.00" in out and "1 Balance" in out
    with runtime.uow() as uow:
        assert uow.session.scalar(select(IdempotencyRecord).where(IdempotencyRecord.key == action)) is None
    assert balance(runtime, A) == 10_00 and _transfers(runtime) == 0


def test_a_step_behind_the_login_gate_never_acts_for_nobody(runtime):
    """Steps behind the gate act for `turn.logged_in_user_id`: reached without a login (a
    bug in the engine), one raises rather than pass None on and answer for nobody."""
    from bot.flows import balance as balance_flow
    from core.db import utcnow
    from core.messaging import conversations

    with runtime.uow() as uow:
        convo, _ = conversations.lock(uow, A, "new")
        turn = Turn(uow, runtime, convo, utcnow())
        with pytest.raises(RuntimeError, match="needs a login"):
            balance_flow.show(turn)
