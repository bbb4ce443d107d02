"""Who may import whom (docs/architecture.md), read from the source: core is the domain
and knows no web framework, job queue or provider; workers run core without the web app."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports(folder: str) -> dict[str, set[str]]:
    """Each module under `folder` -> the top two levels of every module it imports
    (function-local imports too)."""
    out: dict[str, set[str]] = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module)
        out[str(path.relative_to(ROOT))] = {".".join(n.split(".")[:2]) for n in names}
    return out


def _offending(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(f"{module} imports {name}" for module, names in _imports(folder).items()
                  for name in names if name.split(".")[0] in forbidden)


def test_core_imports_no_web_framework_queue_or_provider():
    assert _offending("core", ("flask", "marshmallow", "rq", "twilio", "api", "bot", "workers")) == []


def test_workers_run_without_the_web_app():
    """Jobs and `soxara worker` need core (tracing included), never api/: the log-record
    factory and the trace id live in core/tracing.py. A job may start a bot flow (the
    import-linter contract's words): the payments job asks a customer in the chat."""
    assert _offending("workers", ("api", "flask", "werkzeug", "marshmallow")) == []
    assert {m for m, names in _imports("workers").items() if any(n.startswith("bot") for n in names)} \
        == {"workers/payments.py"}


def test_api_and_bot_meet_only_where_the_app_is_assembled():
    """The two ways in share core, never each other (the bot writes its few JSON answers itself):
    the app factory registers the bot's blueprints and `soxara demo` seeds the bot's demo."""
    assert _offending("bot", ("api",)) == []
    assert _offending("api", ("bot",)) == ["api/app.py imports bot.dev", "api/app.py imports bot.webhook",
                                           "api/cli/demo.py imports bot.demo"]


# Where core commits a transaction itself, and only there (docs/core-services.md, "Where
# core commits", says why for each): everything else takes a unit of work and never commits.
CORE_COMMITS = {
    "core/idempotency.py": {"IdempotencyStore._claim_sqlite", "IdempotencyStore.commit",
                            "IdempotencyStore.store_refusal", "IdempotencyStore.release"},
    "core/identity/pins.py": {"confirm"},
    "core/identity/otp.py": {"verify"},
    "core/identity/sessions.py": {"_revoke_and_refuse"},
    "core/payments/payments.py": {"_ask_card_rail_after_commit.ask"},
}


def _commits(path: Path) -> set[str]:
    """The functions (Class.method) of a module that call `.commit()`."""
    found: set[str] = set()

    def visit(node: ast.AST, scope: list[str]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                visit(child, [*scope, child.name])
                continue
            if isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute) \
                    and child.func.attr == "commit":
                found.add(".".join(scope))
            visit(child, scope)

    visit(ast.parse(path.read_text(encoding="utf-8")), [])
    return found


def test_core_commits_only_where_documented():
    """Guards sweeps in core that committed (claims.expire_due and auto_claim_due, deposits'
    advance_due, the idempotency purge) although core's services never commit: the loops
    over due rows are workers/', a unit of work per row."""
    commits = {str(p.relative_to(ROOT)): _commits(p) for p in sorted((ROOT / "core").rglob("*.py"))
               if p != ROOT / "core" / "db.py"}
    assert {path: found for path, found in commits.items() if found} == CORE_COMMITS
