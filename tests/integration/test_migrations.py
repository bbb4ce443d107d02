"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from core.models import metadata


def _diff(engine):
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(ctx, metadata)


def test_sqlite_schema_matches_models(runtime):
    assert _diff(runtime.engine) == []


def test_postgres_schema_matches_models(pg_runtime):
    assert _diff(pg_runtime.engine) == []


def test_downgrade_then_upgrade(tmp_path):
    from alembic import command

    from migrations.runner import alembic_config

    cfg = alembic_config(f"sqlite:///{tmp_path}/m.db")
    command.upgrade(cfg, "head")
    command.downgrade(cfg, "base")
    command.upgrade(cfg, "head")
