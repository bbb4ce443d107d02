"""Recent transactions: the newest postings of the person's wallets, each in words: how
much, who the money went to or came from, and what it was, with a transfer's status as it
is now. No ids: a reference belongs to the receipt of the action."""

from __future__ import annotations

from bot import copy
from bot.flows.base import Flow, MenuEntry, Turn
from core.bills import bill_payments
from core.identity import users
from core.wallets import deposits, ledger, transfers, wallets
from core.wallets.ledger import Posting


def show(turn: Turn, limit: int = 5) -> None:
    rows = []
    for w in wallets.list_for(turn.uow, wallets.USER, turn.logged_in_user_id, turn.livemode):
        for p in ledger.transactions(turn.uow, w.id, limit=limit):
            rows.append((p.seq, p, w.currency))
    rows.sort(key=lambda r: r[0], reverse=True)
    turn.say(copy.history([
        (p.created_at.strftime("%d %b"), p.amount, cur, what(turn, p)) for _, p, cur in rows[:limit]
    ]))


def what(turn: Turn, p: Posting) -> str:
    """What a posting of the person's was, in words (copy.HISTORY_WHAT)."""
    if p.obj_type == "transfer":
        t = transfers.get(turn.uow, p.obj_id)  # read now: its status may have moved on
        if p.kind in ("transfer", "claim") and p.amount > 0:
            return copy.history_what("claimed" if p.kind == "claim" else "received",
                                     who=transfers.sender_label(turn.uow, t))
        who = users.shown(turn.uow, t.to_phone_number)
        if p.kind == "claim_return":
            return copy.history_what("returned", who=who)
        return copy.history_what(f"sent_{t.status}" if p.kind == "transfer_hold" else "sent", who=who)
    if p.obj_type == "deposit":
        d = deposits.get_for_user(turn.uow, turn.logged_in_user_id, turn.livemode, p.obj_id)
        return copy.history_what("added", method=d.method)
    if p.obj_type == "bill_payment":
        return copy.history_what(p.kind, who=turn.uow.get(bill_payments.BillPayment, p.obj_id, what="bill payment").biller)
    return copy.history_what(p.kind)


flow = Flow("history", menu=MenuEntry(4, copy.MENU_HISTORY, frozenset({"HISTORY", "TRANSACTIONS"})),
            begin=lambda turn, **values: show(turn))
