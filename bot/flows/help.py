"""Help: the keywords and shortcuts (also the HELP keyword, at any step)."""

from __future__ import annotations

from bot import copy
from bot.flows.base import Flow, MenuEntry

flow = Flow("help", menu=MenuEntry(7, copy.MENU_HELP), begin=lambda turn, **values: turn.say(copy.HELP))
