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
    factory and the trace id live in core/tracing.py."""
    assert _offending("workers", ("api", "flask", "bot")) == []


def test_api_and_bot_meet_only_where_the_app_is_assembled():
    """The two ways in share core, never each other (the bot writes its few JSON answers itself):
    the app factory registers the bot's blueprints and `soxara demo` seeds the bot's demo."""
    assert _offending("bot", ("api",)) == []
    assert _offending("api", ("bot",)) == ["api/app.py imports bot.dev", "api/app.py imports bot.webhook",
                                           "api/cli/demo.py imports bot.demo"]

