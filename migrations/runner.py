"""`soxara db upgrade` without an alembic.ini: the script folder is this package."""

from __future__ import annotations

import os

from alembic import command
from alembic.config import Config

HERE = os.path.dirname(os.path.abspath(__file__))


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", HERE)
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def revision(database_url: str, message: str, rev_id: str) -> None:
    command.revision(alembic_config(database_url), message=message, autogenerate=True, rev_id=rev_id)
