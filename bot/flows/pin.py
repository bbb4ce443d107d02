"""Change the PIN: the new PIN twice, then the current one to approve the change."""

from __future__ import annotations

from bot import copy, parse, services
from bot.flows import steps
from bot.flows.base import Flow, MenuEntry, Step, Turn
from core.errors import InvalidInput

flow = Flow("pin", menu=MenuEntry(6, copy.MENU_PIN, frozenset({"PIN", "CHANGE PIN"})),
            cancel=copy.PIN_UNCHANGED)


def on_current(turn: Turn, text: str) -> None:
    current = parse.pin(text)
    if current is None:
        turn.say(copy.again(copy.PIN_FORMAT))
        return
    new = turn.unseal(turn.values.get("first"))
    if new is None:
        turn.go(new_step)
        turn.say(copy.PIN_NEW)
        return
    check = services.check_pin(turn.uow, turn.logged_in_user_id, current)
    if not check.ok:
        if check.locked:
            turn.home()
            turn.say(copy.pin_locked(check.locked_for))
        else:
            turn.say(copy.pin_wrong(check.tries_left))
        return
    try:
        services.set_pin(turn.uow, turn.logged_in_user_id, new, current_pin=current)
    except InvalidInput as e:
        turn.go(new_step)
        turn.say(copy.pin_rejected(e.message))
        return
    turn.home()
    turn.say(copy.PIN_CHANGED)


# Annotated: the steps name each other, so mypy cannot infer their types from the order.
new_step: Step = flow.add(steps.new_pin("pin_change_new", copy.PIN_NEW, repeat=lambda: repeat_step))
repeat_step: Step = flow.add(steps.repeat_pin("pin_change_repeat", choose=lambda: new_step,
                                        then=lambda turn, pin: turn.ask(current_step)))
current_step: Step = flow.add(Step("pin_change_current", on_current, lambda turn: copy.PIN_CURRENT_TO_APPROVE,
                             secret=True))
