"""The balance: the person's money in each currency (also the BAL keyword, at any step)."""

from __future__ import annotations

from bot import copy
from bot.flows.base import RESTING, Flow, MenuEntry, Turn, registry
from core.wallets import wallets


def show(turn: Turn) -> None:
    ws = wallets.list_for(turn.uow, wallets.USER, turn.logged_in_user_id, turn.livemode)
    turn.say(copy.balance([(w.balance, w.currency) for w in ws]))
    if turn.state in RESTING:  # mid-flow, the flow's question comes back instead
        turn.say(copy.after_balance(registry.menu_number("send"), registry.menu_number("add_money")))


flow = Flow("balance", menu=MenuEntry(1, copy.MENU_BALANCE), begin=lambda turn, **values: show(turn))
