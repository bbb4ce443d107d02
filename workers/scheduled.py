"""The scheduler's tick: sweeps over rows whose time has come.

Delayed work (a claim window ending, a sandbox deposit settling, a message that failed
to send) is a row with a due time, not a timer in some process's memory, so it
survives restarts and any number of workers can sweep at once. A sweep lists its due
rows' ids, then hands each to a core function in a unit of work of its own (`each_row`);
that function re-checks its row under the row's lock, so two sweepers, or a sweeper and a
request, never both act on it. The sweeps of each feature live beside its jobs
(workers/transfers.py, workers/deposits.py, workers/messages.py).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable

from core.db import UnitOfWork, database_unavailable
from core.tracing import traced
from workers.context import runtime_for

log = logging.getLogger("soxara.scheduler")

# The function path of every sweep; each takes (runtime, now) and returns a count.
SWEEPS: list[str] = [
    "workers.scheduled.purge_idempotency_keys",
    "workers.transfers.expire_due",
    "workers.transfers.auto_claim_due",
    "workers.deposits.advance_due",
    "workers.bills.settle_due",
    "workers.payments.advance_due",
    "workers.payments.advance_refunds_due",
    "workers.messages.retry_due",
    "workers.auth.purge_expired",
    "workers.webhooks.relay_due",
    "workers.webhooks.retry_due",
]


class RowsFailed(Exception):
    """Rows of one sweep raised; each was logged with its id, and the others were done."""

    def __init__(self, what: str, done: int, failed: list[str]):
        super().__init__(f"{what}: {len(failed)} rows failed ({', '.join(failed[:10])}), {done} done")
        self.done = done
        self.failed = failed


def each_row(rt, what: str, ids: Iterable[str], handle: Callable[[UnitOfWork, str], int]) -> int:
    """`handle(uow, id)` for each id, each in a unit of work of its own, committed: the
    sum of what it returned (whether it acted on its row, or how many things it did).
    `handle` re-checks its row under the row's lock: another worker may have got there
    first.

    A row that raises is rolled back, logged with its id (and the tick's trace id) and
    counted, and the next rows are done all the same: one bad row must not stall its
    sweep for every row behind it, every tick. RowsFailed then names them, so the tick
    fails where its runner shows failures. A database that is down is no row's fault:
    that stops the sweep at once (a conflict, such as a deadlock, is the row's)."""
    done, failed = 0, []
    for row_id in ids:
        try:
            with rt.uow() as uow:
                did = handle(uow, row_id)
                uow.commit()
        except Exception as e:
            if database_unavailable(e) == "down":
                raise  # no row's fault: every later row would wait out the same outage
            log.exception("%s: %s failed; going on with the next", what, row_id)
            failed.append(row_id)
            continue
        done += int(did)
    if failed:
        raise RowsFailed(what, done, failed)
    return done


class SweepsFailed(Exception):
    """Sweeps of one tick raised; each was logged with its traceback, and the others ran."""

    def __init__(self, done: dict[str, int], failed: list[str], trace_id: str = "-"):
        super().__init__(f"{len(failed)} of {len(done) + len(failed)} sweeps failed: {', '.join(failed)} "
                         f"(the tick's trace {trace_id})")
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
    # A trace id of its own per tick: its lines, and the jobs its sweeps enqueue, carry it;
    # SweepsFailed names it, for the runner that logs the failed tick under the job's id.
    with traced() as trace_id:
        for path in SWEEPS:
            try:
                done[path] = _sweep(path)(rt, now)
            except Exception:
                log.exception("sweep %s failed", path)
                failed.append(path)
    if failed:
        raise SweepsFailed(done, failed, trace_id)
    return done


def _sweep(path: str):
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def purge_idempotency_keys(rt, now) -> int:
    with rt.uow() as uow:
        n = rt.idempotency.purge_expired(uow, now)
        uow.commit()
    return n
