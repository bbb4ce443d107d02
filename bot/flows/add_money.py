"""Add money from MTN MoMo or Orange Money: amount → currency → method → the paying
number → confirm → PIN, then core asks the rail and tells the person when it lands."""

from __future__ import annotations

from bot import copy
from bot.flows import steps
from bot.flows.base import Flow, MenuEntry, Step, Turn
from core.wallets import deposits

flow = Flow("add_money", menu=MenuEntry(3, copy.MENU_ADD, frozenset({"ADD", "ADD MONEY", "DEPOSIT"})),
            cancel=copy.ADD_CANCELLED)

METHOD_WORDS = {"1": "mtn_momo", "MTN": "mtn_momo", "MOMO": "mtn_momo", "MTN MOMO": "mtn_momo",
                "2": "orange_money", "ORANGE": "orange_money", "ORANGE MONEY": "orange_money"}


def advance(turn: Turn) -> None:
    """Ask for what is still missing; with all of it, the confirmation."""
    if not steps.ask_missing(turn, (("amount", amount), ("currency", currency), ("method", method),
                                    ("pay_phone", pay_phone))):
        steps.ask_to_confirm(turn, confirm)


def on_method(turn: Turn, text: str) -> None:
    chosen = METHOD_WORDS.get(text.strip().upper())
    if chosen is None:
        turn.say(copy.again(copy.METHOD_PROMPT))
        return
    turn.keep(method=chosen)
    advance(turn)


def take_pay_phone(turn: Turn, text: str) -> bool:
    pay = steps.read_phone(turn, turn.phone if text.strip() == "1" else text, copy.MOMO_FOREIGN)
    if pay is None:
        return False
    turn.keep(pay_phone=pay)
    return True


def request_it(turn: Turn):
    v = turn.values
    return deposits.create(turn.uow, turn.rt, user_id=turn.logged_in_user_id, amount=v["amount"], currency=v["currency"],
                           method=v["method"], phone_number=v["pay_phone"], livemode=turn.livemode)


def requested(turn: Turn, d) -> None:
    turn.say(copy.add_started(d.amount, d.currency, d.method, d.phone_number, d.id))


def _confirmation(turn: Turn) -> str:
    v = turn.values
    return copy.add_confirm(v["amount"], v["currency"], v["method"], v["pay_phone"])


def _pin_question(turn: Turn) -> str:
    v = turn.values
    return copy.add_pin(v["amount"], v["currency"], v["method"], v["pay_phone"])


amount = flow.add(steps.amount("add_amount", copy.ADD_AMOUNT, then=advance))
currency = flow.add(steps.currency("add_currency", then=advance))
method = flow.add(Step("add_method", on_method,
                       lambda turn: copy.add_method(turn.values["amount"], turn.values["currency"])))
pay_phone = flow.add(steps.phone("add_phone", lambda turn: copy.add_phone(turn.values["method"], turn.phone),
                                 take=take_pay_phone, then=advance))
pin = flow.add(steps.pin_then_act("add_pin", _pin_question, act=request_it, done=requested))
confirm = flow.add(steps.confirm("add_confirm", _confirmation, pin=pin, cancelled=copy.ADD_CANCELLED))
