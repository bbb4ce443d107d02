"""Recent transactions: the newest postings of the person's wallets, each with its Ref."""

from __future__ import annotations

from bot import copy
from bot.flows.base import Flow, MenuEntry, Turn
from core.wallets import ledger, wallets


def show(turn: Turn, limit: int = 5) -> None:
    rows = []
    for w in wallets.list_for(turn.uow, wallets.USER, turn.logged_in_user_id, turn.livemode):
        for p in ledger.transactions(turn.uow, w.id, limit=limit):
            rows.append((p.seq, p, w.currency))
    rows.sort(key=lambda r: r[0], reverse=True)
    turn.say(copy.history([
        (p.created_at.strftime("%d %b"), p.amount, cur, copy.history_kind(p.kind, p.amount), p.obj_id)
        for _, p, cur in rows[:limit]
    ]))


flow = Flow("history", menu=MenuEntry(4, copy.MENU_HISTORY, frozenset({"HISTORY", "TRANSACTIONS"})),
            begin=lambda turn, **values: show(turn))
