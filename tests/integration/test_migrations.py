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


def _tables_in_a_fresh_process(code: str) -> list[str]:
    import json
    import subprocess
    import sys
    from pathlib import Path

    out = subprocess.run([sys.executable, "-c", code + "\nimport json\nfrom core.db import Base\n"
                          "print(json.dumps(sorted(Base.metadata.tables)))"],
                         cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_core_models_is_the_whole_schema():
    """core/models.py (what alembic's env and these tests compare against) imports every
    module that defines a table: alone, in a fresh process, it makes the same metadata as
    importing every module of core. A model module it forgot would be a table alembic
    believes dropped."""
    alone = _tables_in_a_fresh_process("import core.models")
    everything = _tables_in_a_fresh_process(
        "import importlib, pkgutil, core\n"
        "for m in pkgutil.walk_packages(core.__path__, 'core.'):\n"
        "    importlib.import_module(m.name)")
    assert alone == everything and "accounts" in alone and "api_keys" in alone
