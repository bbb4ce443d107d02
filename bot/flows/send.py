"""Send money to any Liberian number: from the menu, or `SEND 12.50 USD 0881234567`.

amount → currency → recipient (each asked only if missing) → confirm → PIN. The balance
is checked before the confirmation is shown (the transfer checks again when it runs).
"""

from __future__ import annotations

from bot import copy, parse
from bot.flows import steps
from bot.flows.base import Command, Flow, MenuEntry, Turn, registry
from core.errors import InsufficientFunds, InvalidInput, SoxaraError
from core.identity import users
from core.wallets import transfers

flow = Flow("send", menu=MenuEntry(2, copy.MENU_SEND, frozenset({"SEND", "SEND MONEY"})),
            cancel=copy.SEND_CANCELLED)


def advance(turn: Turn) -> None:
    """Ask for what is still missing; with all of it, the confirmation."""
    v = turn.values
    if steps.ask_missing(turn, (("amount", amount), ("currency", currency), ("to", recipient))):
        return
    if (have := turn.balance_of(v["currency"])) < v["amount"]:
        # Said before the PIN is asked for (the transfer checks again when it runs).
        turn.keep(amount=None)
        turn.next(amount)
        turn.say(copy.insufficient(v["currency"], have))
        turn.say(copy.SEND_AMOUNT)
        return
    steps.ask_to_confirm(turn, confirm)


def take_recipient(turn: Turn, text: str) -> bool:
    to = steps.read_phone(turn, text, copy.NUMBER_FOREIGN)
    if to is None:
        return False
    if to == turn.phone:
        turn.say(copy.again(copy.NUMBER_SELF))
        return False
    if to == turn.rt.settings.whatsapp_number:
        turn.say(copy.again(copy.NUMBER_SOXARA))
        return False
    turn.keep(to=to, label=users.shown(turn.uow, to))
    return True


def send_it(turn: Turn):
    v = turn.values
    sender = transfers.Party("user", turn.logged_in_user_id, turn.livemode)
    return transfers.send(turn.uow, turn.rt, sender=sender, amount=v["amount"], currency=v["currency"],
                          to_phone=v["to"])


def sent(turn: Turn, t) -> None:
    if t.status == "pending_claim":
        turn.say(copy.send_pending_claim(t.amount, t.currency, turn.values["label"],
                                         transfers.claim_window(turn.rt), t.id))
    else:
        turn.say(copy.send_done(t.amount, t.currency, turn.values["label"], t.id))
    turn.say(copy.after_send(registry.menu_number(flow.name)))


def not_sent(turn: Turn, e: SoxaraError) -> None:
    if isinstance(e, InsufficientFunds):
        currency_ = turn.values["currency"]
        turn.say(copy.insufficient(currency_, turn.balance_of(currency_)))
        turn.say(turn.menu())
    else:
        turn.say(turn.refusal(e))


def _confirmation(turn: Turn) -> str:
    v = turn.values
    return copy.send_confirm(v["amount"], v["currency"], v["label"])


def _pin_question(turn: Turn) -> str:
    v = turn.values
    return copy.send_pin(v["amount"], v["currency"], v["label"])


def _recipient_question(turn: Turn) -> str:
    return copy.send_recipient(turn.values["amount"], turn.values["currency"])


amount = flow.add(steps.amount("send_amount", copy.SEND_AMOUNT, then=advance))
currency = flow.add(steps.currency("send_currency", then=advance))
recipient = flow.add(steps.phone("send_recipient", _recipient_question, take=take_recipient, then=advance))
pin = flow.add(steps.pin_then_act("send_pin", _pin_question, act=send_it, done=sent, refused=not_sent))
confirm = flow.add(steps.confirm("send_confirm", _confirmation, pin=pin, cancelled=copy.SEND_CANCELLED))


def begin(turn: Turn, **values) -> None:
    """From the menu (or `start_flow`, with any of amount, currency, to and label)."""
    turn.go(amount, **values)
    advance(turn)


def from_shortcut(turn: Turn, shortcut: parse.SendShortcut) -> None:
    """`SEND 12.50 USD 0881234567`: whatever was given and is valid is kept, what was
    wrong is said, and the rest is asked for (the number first if that was wrong, since
    that is what it just asked for)."""
    turn.go(amount)
    if shortcut.unknown_currency:
        turn.say(copy.currency_unsupported(shortcut.unknown_currency))
    if shortcut.currency:
        turn.keep(currency=shortcut.currency)
    recipient_ok = take_recipient(turn, shortcut.recipient_text) if shortcut.recipient_text else None
    if shortcut.amount_text is not None:
        reading = steps.read_amount(turn, shortcut.amount_text)
        if reading is not None:
            turn.keep(amount=reading.amount, currency=reading.currency or shortcut.currency)
    if recipient_ok is False:
        turn.next(recipient)
        return
    advance(turn)


def at_menu(text: str) -> dict | None:
    """An amount with a word for money typed at the menu (`5 usd`, `L$500`, `5 dollars`):
    a send of it, the currency asked for if it was only "dollars"."""
    if not parse.names_currency(text):
        return None
    try:
        reading = parse.amount_and_currency(text)
    except InvalidInput:
        return None
    return {"amount": reading.amount, "currency": reading.currency}


flow.begin = begin
flow.command = Command(read=parse.send_shortcut, run=from_shortcut)
flow.at_menu = at_menu
