"""The balance: the person's money in each currency (also the BAL keyword, at any step)."""

from __future__ import annotations

from bot import copy
from bot.flows.base import Flow, MenuEntry, Turn
from core.wallets import wallets


def show(turn: Turn) -> None:
    ws = wallets.list_for(turn.uow, wallets.USER, turn.user_id, turn.livemode)
    turn.say(copy.balance([(w.balance, w.currency) for w in ws]))


flow = Flow("balance", menu=MenuEntry(1, copy.MENU_BALANCE), begin=lambda turn, **values: show(turn))
