"""`soxara worker`: an RQ worker with RQ's scheduler, plus the clock that ticks our sweeps.

A Redis outage does not end it. RQ's worker waits out one where it blocks for jobs, but
quits on a Redis error anywhere else (its bookkeeping around a job, its heartbeat): then
this process logs it, waits for Redis with backoff and starts a fresh RQ worker. The
clock goes on ticking into whatever Redis there is. Redis may come back empty (it keeps
nothing on disk): what its lost jobs were to do is on rows the sweeps take up
(core/jobs.py).
"""

from __future__ import annotations

import logging
import signal
import threading

from redis.exceptions import RedisError
from rq import SimpleWorker
from rq.exceptions import StopRequested

from core.config import Settings
from core.jobs import TICK
from workers.jobs import PERFORM
from workers.queue import QUEUE_NAME, Outage, redis_client

log = logging.getLogger("soxara.worker")
TICK_SECONDS = 1
# The longest wait between two tries to reach Redis again (RQ's own, and ours).
RECONNECT_MAX_SECONDS = 10.0


def _clock(redis, queue, stop: threading.Event) -> None:
    # Any number of workers run this clock; a short Redis lock lets one of them enqueue
    # each tick, and the sweeps themselves are safe to run concurrently anyway.
    outage = Outage("Redis, for the scheduler's clock,", log)
    while not stop.is_set():
        try:
            if redis.set("soxara:tick-lock", "1", nx=True, px=int(TICK_SECONDS * 1000)):
                # A tick whose sweep fails is a failed job (SweepsFailed), one a second while
                # it lasts: RQ keeps each an hour, not its default year; the log keeps the trace.
                queue.enqueue(PERFORM, TICK, result_ttl=0, failure_ttl=3600, description=TICK)
            outage.recovered()
        except RedisError as e:
            outage.failed(e)
        except Exception:
            log.exception("clock could not enqueue the tick")
        stop.wait(TICK_SECONDS)


class _Worker(SimpleWorker):
    """SimpleWorker (see README, "soxara worker runs RQ's SimpleWorker") that tells a stop
    on request from quitting on an error, and waits for Redis at most RECONNECT_MAX_SECONDS
    at a time."""

    max_connection_wait_time = RECONNECT_MAX_SECONDS
    stopping = False

    def request_stop(self, signum, frame):
        self.stopping = True
        try:
            super().request_stop(signum, frame)
        except RedisError as e:  # RQ asks Redis for its state first; Redis may be down
            raise StopRequested() from e


def run_worker(settings: Settings, *, burst: bool = False) -> int:
    if not settings.redis_url:
        raise SystemExit("soxara worker needs SOXARA_REDIS_URL; without it jobs run inside `soxara serve`")
    # SimpleWorker runs each job in this process. RQ's default Worker forks a work horse
    # per job, which here meant a new PostgreSQL connection per job as well: 44 ms of CPU
    # and 17 jobs/s against 8 ms and 82 jobs/s (a message delivery job, measured). Our jobs
    # are short database and HTTP calls, safe to retry; RQ's job timeout still applies
    # (a signal in this, the main thread).
    from core.tracing import install_logging
    from workers.context import set_process_runtime
    from workers.queue import RQQueue
    from workers.runtime import build_runtime

    install_logging()
    set_process_runtime(build_runtime(settings))  # what the jobs run against; logs what is live
    q = RQQueue(settings.redis_url)  # the clock's: short timeouts
    stop = threading.Event()
    if not burst:
        threading.Thread(target=_clock, args=(q.redis, q.queue, stop), daemon=True).start()
    try:
        if burst:
            _worker(settings.redis_url).work(with_scheduler=True, burst=True)
            return 0
        return _work_through_outages(settings.redis_url)
    finally:
        stop.set()


def _worker(redis_url: str) -> _Worker:
    from rq import Queue

    # A connection of its own: RQ lengthens its socket timeout past its blocking dequeue.
    conn = redis_client(redis_url, socket_timeout=None)
    return _Worker([Queue(QUEUE_NAME, connection=conn)], connection=conn)


def _work_through_outages(redis_url: str) -> int:
    outage = Outage("Redis, for the worker,", log)
    probe = redis_client(redis_url)
    while True:
        worker = None
        try:
            worker = _worker(redis_url)
            worker.work(with_scheduler=True)
        except RedisError as e:  # RQ talks to Redis as its worker is made, starts and ends
            outage.failed(e)
        if worker is not None:
            if worker.stopping:
                return 0
            if not outage.down:  # RQ logged why; Redis was back by its teardown
                log.error("RQ's worker quit its loop; starting another")
            _stop_listening(worker)
        if not _wait_for_redis(probe, outage):
            return 0


def _stop_listening(worker: _Worker) -> None:
    """End the thread RQ's worker listens to commands on: its own teardown could not (it
    tells Redis first), and the next worker starts one of its own."""
    thread = getattr(worker, "pubsub_thread", None)
    if thread is not None:
        thread.stop()


def _wait_for_redis(conn, outage: Outage) -> bool:
    """Wait, with backoff, until Redis answers (True) or a signal asks this process to stop
    (False). RQ's signal handlers belong to the worker that quit: these stand in meanwhile."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    wait = 0.5
    while not stop.wait(wait):
        try:
            conn.ping()
        except RedisError as e:
            outage.failed(e)
            wait = min(wait * 2, RECONNECT_MAX_SECONDS)
            continue
        outage.recovered()
        return True
    return False
