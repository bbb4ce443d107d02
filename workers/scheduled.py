"""The scheduler's tick: sweeps over rows whose time has come.

Delayed work (a claim window ending, a sandbox deposit settling, a message that failed
to send) is a row with a due time, not a timer in some process's memory, so it
survives restarts and any number of workers can sweep at once: each sweep takes
its rows under locks that skip what another worker already holds.
"""

from __future__ import annotations

import importlib
import logging

from core.tracing import traced
from workers.context import runtime_for

log = logging.getLogger("soxara.scheduler")

# (name, function path) of every sweep; each takes (runtime, now) and returns a count.
SWEEPS: list[str] = [
    "workers.scheduled.purge_idempotency_keys",
    "workers.scheduled.expire_transfers",
    "workers.scheduled.auto_claim_test_transfers",
    "workers.scheduled.advance_deposits",
    "workers.messages.retry_due",
    "workers.auth.purge_expired",
]


class SweepsFailed(Exception):
    """Sweeps of one tick raised; each was logged with its traceback, and the others ran."""

    def __init__(self, done: dict[str, int], failed: list[str]):
        super().__init__(f"{len(failed)} of {len(done) + len(failed)} sweeps failed: {', '.join(failed)}")
        self.done = done
        self.failed = failed


def tick(runtime=None, now=None) -> dict[str, int]:
    """Run every sweep once: {sweep: how many rows it handled}.

    A sweep that raises is logged with its traceback (and the trace id, if one is set),
    and the next one runs all the same; at the end SweepsFailed names the failures, so
    the job that ran the tick fails where its runner shows failures (RQ's failed jobs,
    the in-process runner's log) instead of passing as if all was well.
    """
    rt = runtime_for(runtime)
    done: dict[str, int] = {}
    failed: list[str] = []
    with traced():  # a trace id per tick: its lines, and the jobs its sweeps enqueue, carry it
        for path in SWEEPS:
            try:
                done[path] = _sweep(path)(rt, now)
            except Exception:
                log.exception("sweep %s failed", path)
                failed.append(path)
    if failed:
        raise SweepsFailed(done, failed)
    return done


def _sweep(path: str):
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def purge_idempotency_keys(rt, now) -> int:
    return rt.idempotency.purge_expired(now)


def expire_transfers(rt, now) -> int:
    from core.wallets import claims

    return claims.expire_due(rt, now)


def auto_claim_test_transfers(rt, now) -> int:
    from core.wallets import claims

    return claims.auto_claim_due(rt, now)


def advance_deposits(rt, now) -> int:
    from core.wallets import deposits

    return deposits.advance_due(rt, now)
