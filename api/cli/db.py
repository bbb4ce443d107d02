"""`soxara db upgrade`: migrate the database to the newest schema."""

from __future__ import annotations

import argparse
import sys

from api.cli.base import command_group
from core.config import Settings


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from migrations.runner import upgrade

    settings = Settings.from_env()
    upgrade(settings.database_url)
    print(f"database at head: {settings.database_url.split('@')[-1]}", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    db = command_group(sub, "db", "database schema")
    db.add_parser("upgrade", help="migrate the database to the newest schema").set_defaults(fn=cmd_db_upgrade)
