"""How the domain asks for work to happen later, without knowing who runs it.

Core names a job by one of the names below and gives it ids, never objects; workers/jobs.py
maps each name to the function that does it (`JOBS`), and both queues (RQ in production,
the in-process runner in the embedded default) run jobs through that registry. A job is
only handed over after its transaction commits, and carries the trace id of what
enqueued it (core/tracing.py): its log lines are found with the request's.

The rule: `enqueue_after_commit` is only for work that a row with a due time also
records, so that a sweep of the scheduler's tick finds it when the job is lost. A job is
a prompt, never the record: it is lost when the queue cannot take it (Redis down: the
enqueue fails after the transaction has committed, and the caller is answered with its
outcome all the same) and when Redis restarts empty (it keeps nothing on disk). Today's
jobs and the rows that back them:

- `DELIVER_MESSAGE`: `outbound_messages.next_attempt_at`, due `GRACE` after the message
  was written (the sweep `workers.messages.retry_due` sends it);
- `ADVANCE_DEPOSIT`: `deposits.next_check_at`, due at once (the sweep
  `workers.deposits.advance_due` asks the rail);
- `SETTLE_BILL_PAYMENT`: `bill_payments.next_check_at`, due at once (the sweep
  `workers.bills.settle_due` pays the biller, or asks it again after a pending answer);
- `ADVANCE_PAYMENT`: `payments.next_check_at` (ask the customer in the chat, poll the rail,
  expire an approval; the sweep `workers.payments.advance_due`);
- `ADVANCE_REFUND`: `refunds.next_check_at` (send a refund over its rail; the sweep
  `workers.payments.advance_refunds_due`);
- `RELAY_EVENTS`: `events.relay_pending` (the sweep `workers.webhooks.relay_due` fans
  out what is left);
- `DELIVER_WEBHOOKS`: `webhook_deliveries.next_attempt_at` (the sweep
  `workers.webhooks.retry_due` prompts each endpoint with a delivery due);
- `TICK`: the scheduler's tick itself, run every second by whichever runner is there.
"""

from __future__ import annotations

import logging
from typing import Protocol

log = logging.getLogger("soxara.jobs")


# Every job's name, and the ids core passes it, in order: what its function in
# workers/jobs.py must take (a test checks each resolves and takes them).
DELIVER_MESSAGE = "messages.deliver"
ADVANCE_DEPOSIT = "deposits.advance"
SETTLE_BILL_PAYMENT = "bills.settle"
TICK = "scheduler.tick"
ADVANCE_PAYMENT = "payments.advance"
ADVANCE_REFUND = "refunds.advance"
RELAY_EVENTS = "webhooks.relay"
DELIVER_WEBHOOKS = "webhooks.deliver"
ARGUMENTS: dict[str, tuple[str, ...]] = {
    DELIVER_MESSAGE: ("message_id",),
    ADVANCE_DEPOSIT: ("deposit_id",),
    SETTLE_BILL_PAYMENT: ("bill_payment_id",),
    ADVANCE_PAYMENT: ("payment_id",),
    ADVANCE_REFUND: ("refund_id",),
    RELAY_EVENTS: (),
    DELIVER_WEBHOOKS: ("endpoint_id",),
    TICK: (),
}


class JobQueueUnavailable(Exception):
    """The queue cannot take jobs now (Redis unreachable). The work waits for a sweep."""


class JobQueue(Protocol):
    def enqueue(self, job: str, *args, job_id: str | None = None) -> None: ...


def enqueue_after_commit(uow, jobs: JobQueue, job: str, *args, job_id: str | None = None) -> None:
    """Hand `job(*args)` to `jobs` once `uow` commits (never if it rolls back). Only for
    work a row with a due time also records: see the module's docstring."""
    expected = ARGUMENTS.get(job)
    if expected is None or len(expected) != len(args):
        # A bug in the caller, raised in its transaction: not a job lost after the commit.
        raise ValueError(f"no job {job!r} takes {len(args)} arguments")

    def enqueue() -> None:
        try:
            jobs.enqueue(job, *args, job_id=job_id)
        except JobQueueUnavailable as e:
            # The queue logs the outage itself, once; this line names what it cost.
            log.warning("job %s%r left to the sweeps: %s", job, args, e)

    uow.after_commit(enqueue)
