"""Every job core can ask for (core/jobs.py names them), mapped to the function that does it.

Both queues run jobs through `perform`: RQ enqueues it by its path with the job's name,
ids and trace id (so a job written to Redis names what it is, not where its function
lives today, and a function can move without stranding queued jobs); the in-process
runner calls it directly. Each function takes the ids core gives, plus `runtime=` (None:
the process's own, workers/context.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core import jobs
from core.tracing import traced
from workers import bills, deposits, messages, payments, scheduled, webhooks

JOBS: dict[str, Callable[..., Any]] = {
    jobs.DELIVER_MESSAGE: messages.deliver,
    jobs.ADVANCE_DEPOSIT: deposits.advance,
    jobs.SETTLE_BILL_PAYMENT: bills.settle,
    jobs.ADVANCE_PAYMENT: payments.advance,
    jobs.ADVANCE_REFUND: payments.advance_refund,
    jobs.TICK: scheduled.tick,
    jobs.RELAY_EVENTS: webhooks.relay,
    jobs.DELIVER_WEBHOOKS: webhooks.deliver,
}

# Jobs of one id that the in-process runner may run many at once: queued back to back,
# they become one call of the batch function with the list of their ids.
DELIVER_MESSAGES = "messages.deliver_many"
BATCHES = {jobs.DELIVER_MESSAGE: DELIVER_MESSAGES}
JOBS[DELIVER_MESSAGES] = messages.deliver_many

# What RQ enqueues: the dispatcher's importable path.
PERFORM = "workers.jobs.perform"


class UnknownJob(LookupError):
    """A job name no function is registered for (a job from a newer release, or a typo)."""


def perform(name: str, *args, trace_id: str | None = None, runtime=None):
    """Run the job `name` on `args` under `trace_id` (the id of the request or tick that
    enqueued it; a new one when it had none): its log lines carry it."""
    try:
        fn = JOBS[name]
    except KeyError:
        raise UnknownJob(f"no job is called {name!r}") from None
    with traced(trace_id):
        return fn(*args, runtime=runtime)
