"""The `soxara` command: operate a Soxara deployment from a shell.

Commands that create something print it as JSON on stdout.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from api.cli import db, demo, merchants, money, serve, staff
from api.cli.base import print_json

# Each module registers its commands; `soxara --help` lists them in this order.
COMMAND_MODULES = (db, serve, merchants, money, staff, demo)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="soxara", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    for module in COMMAND_MODULES:
        module.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        outcome = args.fn(args)
    except Exception as e:  # an operator wants a sentence, not a traceback
        from core.config import ConfigError
        from core.errors import SoxaraError

        if isinstance(e, (SoxaraError, ConfigError)):
            print(f"soxara: {getattr(e, 'message', e)}", file=sys.stderr)
            return 2
        raise
    if isinstance(outcome, dict):
        # What the command created (and committed), for the operator and for scripts.
        print_json(outcome)
        return 0
    return outcome or 0
