"""`soxara demo`: seed a demo merchant and two funded sandbox users; print where to chat.

The seed itself is the bot's (bot/demo.py: who the demo's people are and where they chat);
this module is the command around it, and the one place the CLI reaches into bot/.
"""

from __future__ import annotations

import argparse
import sys

from api.cli.base import Created, runtime
from core.config import Settings


def cmd_demo(args: argparse.Namespace) -> int | Created:
    from bot.demo import seed

    settings = Settings.from_env()
    if not settings.sandbox:
        print("soxara: demo seeds sandbox data; it does not run in production", file=sys.stderr)
        return 2
    if settings.is_sqlite:
        from migrations.runner import upgrade

        upgrade(settings.database_url)  # the embedded default should just work
    return seed(runtime(settings))


def register(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("demo", help="seed a demo merchant and two funded sandbox users; print where to chat")
    d.set_defaults(fn=cmd_demo)
