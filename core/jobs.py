"""How the domain asks for work to happen later, without knowing who runs it.

Core names a job by its dotted path (`"workers.messages.deliver"`) and gives it ids,
never objects. Production runs jobs on RQ workers; the embedded default runs them in
this process. Either way a job is only handed over after its transaction commits.

The rule: `enqueue_after_commit` is only for work that a row with a due time also
records, so that a sweep of the scheduler's tick finds it when the job is lost. A job is
a prompt, never the record: it is lost when the queue cannot take it (Redis down: the
enqueue fails after the transaction has committed, and the caller is answered with its
outcome all the same) and when Redis restarts empty (it keeps nothing on disk). Today's
jobs and the rows that back them:

- `workers.messages.deliver`: `outbound_messages.next_attempt_at`, due `GRACE` after the
  message was written (`workers.messages.retry_due` sends it);
- `workers.deposits.advance`: `deposits.next_check_at`, due at once
  (`core.wallets.deposits.advance_due` asks the rail).
"""

from __future__ import annotations

import logging
from typing import Protocol

log = logging.getLogger("soxara.jobs")


class JobQueueUnavailable(Exception):
    """The queue cannot take jobs now (Redis unreachable). The work waits for a sweep."""


class JobQueue(Protocol):
    def enqueue(self, job: str, *args, job_id: str | None = None) -> None: ...


def enqueue_after_commit(uow, jobs: JobQueue, job: str, *args, job_id: str | None = None) -> None:
    """Hand `job(*args)` to `jobs` once `uow` commits (never if it rolls back). Only for
    work a row with a due time also records: see the module's docstring."""

    def enqueue() -> None:
        try:
            jobs.enqueue(job, *args, job_id=job_id)
        except JobQueueUnavailable as e:
            # The queue logs the outage itself, once; this line names what it cost.
            log.warning("job %s%r left to the sweeps: %s", job, args, e)

    uow.after_commit(enqueue)
