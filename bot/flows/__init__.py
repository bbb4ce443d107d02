"""The chat's flows, one module each, and the registry the engine and the menu read.

The order of registration does not matter: a flow's `MenuEntry.order` places it on the
menu. Adding a flow is a module here, one line below, and its sentences in bot/copy.py
(docs/bot.md shows how).
"""

from bot.flows import (
    add_money,
    approvals,
    balance,
    claim,
    help,
    history,
    login,
    pay_bill,
    pin,
    send,
)
from bot.flows.base import MENU, RESTING, Flow, MenuEntry, Step, Turn, registry

for _module in (login, balance, send, add_money, history, claim, pin, pay_bill, help, approvals):
    registry.register(_module.flow)

__all__ = ["MENU", "RESTING", "Flow", "MenuEntry", "Step", "Turn", "registry"]
