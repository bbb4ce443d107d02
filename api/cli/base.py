"""What every `soxara` command shares: the runtime it works in and how it prints."""

from __future__ import annotations

import argparse
import json
from typing import Any

from core.config import Settings
from core.runtime import Runtime

# What a command that creates something returns: main prints it as JSON on stdout (scripts
# read it; messages go to stderr) and exits 0. Other commands return their exit status.
Created = dict[str, Any]


def runtime(settings: Settings | None = None, *, jobs: bool = True) -> Runtime:
    """A runtime from the environment's settings. With `jobs`, a job queue whose
    in-process runner runs eagerly: a command is short-lived, so what it causes runs
    before it exits."""
    from workers.runtime import build_runtime

    return build_runtime(settings or Settings.from_env(), jobs="eager" if jobs else None)


def print_json(obj: Created) -> None:
    print(json.dumps(obj, indent=2, default=str))


def command_group(sub: argparse._SubParsersAction, name: str, help: str) -> argparse._SubParsersAction:
    """`soxara NAME …`: a word whose subcommands follow it (`soxara ledger check`)."""
    return sub.add_parser(name, help=help).add_subparsers(dest=f"{name}_cmd", required=True, metavar="COMMAND")
