"""The two job queues: RQ on Redis (production, CI) and the in-process runner (embedded)."""

from __future__ import annotations

import importlib
import logging
import queue
import threading
import time

from core.runtime import Runtime

log = logging.getLogger("soxara.jobs")
QUEUE_NAME = "soxara"
TICK_SECONDS = 1.0
# Jobs of one argument that the in-process runner may run many at once: queued back to
# back, they become one call of the batch job with the list of their arguments.
BATCHES = {"workers.messages.deliver": "workers.messages.deliver_many"}
MAX_COALESCED = 256
# How long the runner waits for more of a batchable job before running what it has: a
# WhatsApp message is none the worse for 50 ms, and under load a batch of several costs
# little more than a batch of one.
LINGER_SECONDS = 0.05


def resolve(job: str):
    module, _, name = job.rpartition(".")
    return getattr(importlib.import_module(module), name)


class RQQueue:
    def __init__(self, redis_url: str):
        from redis import Redis
        from rq import Queue, Retry

        self.redis = Redis.from_url(redis_url)
        self.queue = Queue(QUEUE_NAME, connection=self.redis)
        self._retry = Retry(max=5, interval=[1, 5, 15, 60, 300])

    def enqueue(self, job: str, *args, job_id: str | None = None) -> None:
        # Jobs are written to be safe to run twice (they act on rows, by id, under
        # row locks), so at-least-once delivery with retries is what we want.
        self.queue.enqueue(job, *args, job_id=job_id, retry=self._retry)


class InProcessRunner:
    """Runs jobs inside this process: the embedded default, with no Redis.

    "thread": a daemon thread runs queued jobs and, every second, the scheduler's tick.
    "eager": a job runs as soon as it is enqueued (which is after its transaction
    committed), in the caller's thread; the tick runs only when a test calls it. A job
    that fails is logged and kept in `failures` (tests fail on it) but not raised: the
    caller's transaction has committed, and the sweeps redo what the job left undone.
    """

    def __init__(self, runtime: Runtime, mode: str = "thread"):
        self.runtime = runtime
        self.mode = mode
        self._q: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.failures: list[tuple[str, tuple, Exception]] = []

    def enqueue(self, job: str, *args, job_id: str | None = None) -> None:
        if self.mode == "eager":
            self._run(job, args)
            return
        self._ensure_thread()
        self._q.put((job, args))

    def _run(self, job: str, args) -> None:
        try:
            resolve(job)(*args, runtime=self.runtime)
        except Exception as e:
            # The scheduler's sweeps pick up whatever a failed job left undone.
            log.exception("job %s%r failed", job, args)
            if self.mode == "eager":
                self.failures.append((job, args, e))

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="soxara-jobs", daemon=True)
            self._thread.start()

    def start(self) -> None:
        if self.mode == "thread":
            self._ensure_thread()

    def _loop(self) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set():
            timeout = max(0.0, next_tick - time.monotonic())
            try:
                jobs = [self._q.get(timeout=timeout)]
            except queue.Empty:
                jobs = []
            # What queues up while the last job ran, or within LINGER_SECONDS of a batchable
            # one, goes together: under load, deliveries share a transaction instead of
            # each paying for one.
            linger_until = time.monotonic() + (LINGER_SECONDS if jobs and jobs[0][0] in BATCHES else 0.0)
            while jobs and len(jobs) < MAX_COALESCED:
                wait = linger_until - time.monotonic()
                try:
                    jobs.append(self._q.get(timeout=wait) if wait > 0 else self._q.get_nowait())
                except queue.Empty:
                    break
            for job, args in coalesce(jobs):
                self._run(job, args)
            if time.monotonic() >= next_tick:
                self._run("workers.scheduled.tick", ())
                next_tick = time.monotonic() + TICK_SECONDS

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread after the job it is running (waiting up to `timeout` seconds)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)


def coalesce(jobs: list[tuple[str, tuple]]) -> list[tuple[str, tuple]]:
    """`jobs` in order, with each run of one batchable job (BATCHES) made one call."""
    out: list[tuple[str, tuple]] = []
    for job, args in jobs:
        batch = BATCHES.get(job)
        if batch is not None and out and out[-1][0] == batch:
            out[-1][1][0].append(args[0])
        elif batch is not None:
            out.append((batch, ([args[0]],)))
        else:
            out.append((job, args))
    return out


def queue_for(runtime: Runtime):
    if runtime.settings.redis_url:
        return RQQueue(runtime.settings.redis_url)
    return InProcessRunner(runtime, runtime.settings.inprocess_jobs)
