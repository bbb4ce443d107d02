"""How the domain asks for work to happen later, without knowing who runs it.

Core names a job by its dotted path (`"workers.messages.deliver"`) and gives it ids,
never objects. Production runs jobs on RQ workers; the embedded default runs them in
this process. Either way a job is only handed over after its transaction commits.
"""

from __future__ import annotations

from typing import Protocol


class JobQueue(Protocol):
    def enqueue(self, job: str, *args, job_id: str | None = None) -> None: ...


def enqueue_after_commit(uow, jobs: JobQueue, job: str, *args, job_id: str | None = None) -> None:
    uow.after_commit(lambda: jobs.enqueue(job, *args, job_id=job_id))
