"""Payment requests: a merchant asked this person to pay from their Soxara wallet.

Started from outside the chat (a worker, `dialog.start_flow(…, "approvals", payment=…)`),
or from the menu, which lists the requests still waiting so a missed message can still be
answered. The confirmation shows amount, currency and merchant; YES asks for the PIN and
core pays (core.payments.payments.approve), carried out once; NO declines. CANCEL leaves
the request waiting until it expires. A PIN typed wrong five times locks like any other.
"""

from __future__ import annotations

from bot import copy
from bot.flows import steps
from bot.flows.base import Flow, MenuEntry, Step, Turn
from core.amounts import format_amount
from core.errors import InsufficientFunds, SoxaraError
from core.payments import payments

MINUTES = int(payments.APPROVAL_WINDOW.total_seconds() // 60)

flow = Flow("approvals", menu=MenuEntry(9, copy.MENU_APPROVALS, frozenset({"PAY", "REQUESTS", "PAYMENT REQUESTS"})),
            cancel=copy.approval_later(MINUTES))


def _shown(turn: Turn, p: payments.Payment) -> dict:
    return {"payment": p.id, "amount_text": format_amount(p.amount, p.currency),
            "merchant": payments.merchant_name(turn.uow, p), "description": payments.description_shown(p)}


def begin(turn: Turn, payment: str | None = None, **_values) -> None:
    """One request named (from the worker), else the waiting ones: one is shown, several listed."""
    waiting = payments.awaiting(turn.uow, turn.phone, turn.now)
    if payment is not None:
        waiting = [p for p in waiting if p.id == payment]
    if not waiting:
        turn.home()
        turn.say(copy.APPROVALS_NONE)
        turn.say(turn.menu())
    elif len(waiting) == 1:
        turn.go(confirm, **_shown(turn, waiting[0]))
        steps.ask_to_confirm(turn, confirm)
    else:
        turn.go(choose, choices=[p.id for p in waiting])
        turn.say(_list(turn))


def _list(turn: Turn) -> str:
    found = {p.id: p for p in payments.awaiting(turn.uow, turn.phone, turn.now)}
    lines = []
    for pid in turn.values.get("choices", []):
        p = found.get(pid)
        if p is not None:
            shown = _shown(turn, p)
            lines.append(f"{shown['amount_text']} to {shown['merchant']}")
    return copy.approval_list(lines)


def on_choice(turn: Turn, text: str) -> None:
    choices = turn.values.get("choices", [])
    t = text.strip().strip(".")
    if not t.isdigit() or not 1 <= int(t) <= len(choices):
        turn.say(copy.again(copy.APPROVALS_CHOOSE))
        return
    begin(turn, payment=choices[int(t) - 1])


def decline(turn: Turn) -> str:
    """NO at the confirmation: the merchant's request is declined."""
    v = turn.values
    try:
        payments.decline(turn.uow, turn.rt, v["payment"], phone=turn.phone, now=turn.now)
    except SoxaraError:
        return copy.APPROVAL_GONE
    return copy.approval_declined(v["merchant"])


def pay(turn: Turn):
    return payments.approve(turn.uow, turn.rt, turn.values["payment"], user_id=turn.logged_in_user_id,
                            phone=turn.phone, now=turn.now)


def paid(turn: Turn, p) -> None:
    v = turn.values
    turn.say(copy.approval_paid(v["amount_text"], v["merchant"], p.id))


def not_paid(turn: Turn, e: SoxaraError) -> None:
    v = turn.values
    if isinstance(e, InsufficientFunds):
        # The savepoint undid the attempt; the payment goes back to payable, saying why.
        p = payments.short_of_funds(turn.uow, turn.rt, v["payment"], phone=turn.phone, now=turn.now)
        turn.say(copy.approval_short(p.currency, turn.balance_of(p.currency)))
    elif e.code in ("INVALID_STATE", "NOT_FOUND"):
        turn.say(copy.APPROVAL_GONE)
    else:
        turn.say(turn.refusal(e))
    turn.say(turn.menu())


def _question(turn: Turn) -> str:
    v = turn.values
    return copy.approval_confirm(v["amount_text"], v["merchant"], v.get("description"))


choose = flow.add(Step("approval_choose", on_choice, _list, number=True))
pin = flow.add(steps.pin_then_act("approval_pin", lambda turn: copy.approval_pin(
    turn.values["amount_text"], turn.values["merchant"]), act=pay, done=paid, refused=not_paid))
confirm = flow.add(steps.confirm("approval_confirm", _question, pin=pin, cancelled=copy.APPROVAL_GONE,
                                  declined=decline))
flow.begin = begin
