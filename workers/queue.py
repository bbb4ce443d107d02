"""The two job queues: RQ on Redis (production, CI) and the in-process runner (embedded)."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque

from core.jobs import TICK, JobQueueUnavailable
from core.retry import JOB_RETRY
from core.runtime import Runtime
from core.tracing import current_trace_id, traced
from workers.jobs import BATCHES, PERFORM, perform

log = logging.getLogger("soxara.jobs")
QUEUE_NAME = "soxara"
TICK_SECONDS = 1.0
MAX_COALESCED = 256
# How long the runner waits for more of a batchable job before running what it has: a
# WhatsApp message is none the worse for 50 ms, and under load a batch of several costs
# little more than a batch of one.
LINGER_SECONDS = 0.05


class Outage:
    """Whether a dependency answers, logged once when it stops, every REMIND_SECONDS while
    it does not, and once when it is back: not once per failed call, in a flood.

    `retry_after`: after a failure, `may_try` says no for that long, so that callers do
    not each wait out the timeouts of a dependency that just failed.
    """

    REMIND_SECONDS = 60.0

    def __init__(self, what: str, logger: logging.Logger, *, retry_after: float = 0.0,
                 clock=time.monotonic):
        self.what, self.log, self.retry_after, self.clock = what, logger, retry_after, clock
        self._lock = threading.Lock()
        self.down_since: float | None = None
        self.missed = 0  # calls that failed, or were not tried, during this outage
        self._reminded_at = self._next_try = 0.0

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def may_try(self) -> bool:
        with self._lock:
            if self.down_since is None or self.clock() >= self._next_try:
                return True
            self.missed += 1
            return False

    def failed(self, error: BaseException) -> None:
        with self._lock:
            now = self.clock()
            self.missed += 1
            self._next_try = now + self.retry_after
            first = self.down_since is None
            remind = not first and now - self._reminded_at >= self.REMIND_SECONDS
            if first:
                self.down_since = now
            if first or remind:
                self._reminded_at = now
            since, missed = now - (self.down_since or now), self.missed
        if first:
            self.log.error("%s is unreachable: %s", self.what, error)
        elif remind:
            self.log.error("%s is still unreachable, for %.0f s now (%d calls missed): %s",
                           self.what, since, missed, error)

    def recovered(self) -> None:
        if self.down_since is None:  # the common case, without the lock
            return
        with self._lock:
            if self.down_since is None:
                return
            since, missed = self.clock() - self.down_since, self.missed
            self.down_since, self.missed = None, 0
        self.log.warning("%s is reachable again, after %.0f s (%d calls missed)", self.what, since, missed)


# A healthy Redis answers an enqueue in a millisecond or two. These bound what a request
# loses to one that does not answer (a hung or unreachable host sends no refusal): a
# connection, one command, and one retry on a fresh connection (a pooled one goes stale
# when Redis restarts).
REDIS_CONNECT_TIMEOUT = 0.5
REDIS_SOCKET_TIMEOUT = 1.0
# After a failed enqueue the next ones are not tried for this long: their work is on rows
# the sweeps take up anyway, and requests must not each wait out the timeouts.
ENQUEUE_RETRY_AFTER = 1.0


def redis_client(redis_url: str, **kw):
    """A Redis client that never holds its caller long when Redis is down or silent."""
    from redis import Redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    kw.setdefault("socket_timeout", REDIS_SOCKET_TIMEOUT)
    return Redis.from_url(redis_url, socket_connect_timeout=REDIS_CONNECT_TIMEOUT, socket_keepalive=True,
                          retry=Retry(NoBackoff(), 1), **kw)


class RQQueue:
    def __init__(self, redis_url: str):
        from rq import Queue, Retry

        self.redis = redis_client(redis_url)
        self.queue = Queue(QUEUE_NAME, connection=self.redis)
        self._retry = Retry(max=len(JOB_RETRY.schedule), interval=[int(s) for s in JOB_RETRY.schedule])
        self.outage = Outage("the job queue (Redis)", log, retry_after=ENQUEUE_RETRY_AFTER)

    def enqueue(self, job: str, *args, job_id: str | None = None) -> None:
        """Raises JobQueueUnavailable when Redis does not take the job (core/jobs.py: a
        sweep does its work instead)."""
        from redis.exceptions import RedisError

        if not self.outage.may_try():
            raise JobQueueUnavailable("not tried: Redis failed a moment ago")
        try:
            # Jobs are written to be safe to run twice (they act on rows, by id, under
            # row locks), so at-least-once delivery with retries is what we want. The
            # dispatcher runs it under the trace id of whatever enqueued it.
            self.queue.enqueue(PERFORM, job, *args, trace_id=current_trace_id(), job_id=job_id,
                               retry=self._retry, description=f"{job}{args!r}")
        except RedisError as e:  # unreachable, silent, or refusing writes (out of memory…)
            self.outage.failed(e)
            raise JobQueueUnavailable(f"{type(e).__name__}: {e}") from e
        self.outage.recovered()

    def health(self) -> str:
        """"ok" when Redis answers a ping, else "unreachable"."""
        from redis.exceptions import RedisError

        try:
            self.redis.ping()
        except RedisError as e:
            self.outage.failed(e)
            return "unreachable"
        self.outage.recovered()
        return "ok"


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
        # The latest only: SOXARA_INPROCESS_JOBS=eager may also serve for long.
        self.failures: deque[tuple[str, tuple, Exception]] = deque(maxlen=100)

    def enqueue(self, job: str, *args, job_id: str | None = None) -> None:
        # The job runs under the trace id of what enqueued it, here or on the thread.
        if self.mode == "eager":
            self._run(job, args, current_trace_id())
            return
        self._ensure_thread()
        self._q.put((job, args, current_trace_id()))

    def _run(self, job: str, args, trace_id: str | None) -> None:
        with traced(trace_id) as trace_id:  # the job's failure too is logged under its trace id
            try:
                perform(job, *args, trace_id=trace_id, runtime=self.runtime)
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

    def health(self) -> str:
        """"ok" while jobs run: eagerly, or on a live thread; "stopped" when that thread is
        not running (nothing would tick the sweeps)."""
        if self.mode == "eager" or (self._thread is not None and self._thread.is_alive()
                                    and not self._stop.is_set()):
            return "ok"
        return "stopped"

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
            for job, args, trace_id in coalesce(jobs):
                self._run(job, args, trace_id)
            if time.monotonic() >= next_tick:
                self._run(TICK, (), None)  # each tick has a trace id of its own
                next_tick = time.monotonic() + TICK_SECONDS

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread after the job it is running (waiting up to `timeout` seconds)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)


Queued = tuple[str, tuple, str | None]  # (job, args, trace id)


def coalesce(jobs: list[Queued]) -> list[Queued]:
    """`jobs` in order, with each run of one batchable job (BATCHES) made one call. A
    batch runs under the trace id of its first job (one transaction serves them all)."""
    out: list[Queued] = []
    for job, args, trace_id in jobs:
        batch = BATCHES.get(job)
        if batch is not None and out and out[-1][0] == batch:
            out[-1][1][0].append(args[0])
        elif batch is not None:
            out.append((batch, ([args[0]],), trace_id))
        else:
            out.append((job, args, trace_id))
    return out


def queue_for(runtime: Runtime, *, eager: bool = False):
    """RQ on SOXARA_REDIS_URL, else the in-process runner (eager if asked: a short-lived
    command runs what it causes before it exits)."""
    if runtime.settings.redis_url:
        return RQQueue(runtime.settings.redis_url)
    return InProcessRunner(runtime, "eager" if eager else runtime.settings.inprocess_jobs)
