"""`soxara worker`: an RQ worker with RQ's scheduler, plus the clock that ticks our sweeps."""

from __future__ import annotations

import logging
import threading
import time

from core.config import Settings

log = logging.getLogger("soxara.worker")
TICK_SECONDS = 1


def _clock(redis, queue, stop: threading.Event) -> None:
    # Any number of workers run this clock; a short Redis lock lets one of them enqueue
    # each tick, and the sweeps themselves are safe to run concurrently anyway.
    while not stop.is_set():
        try:
            if redis.set("soxara:tick-lock", "1", nx=True, px=int(TICK_SECONDS * 1000)):
                # A tick whose sweep fails is a failed job (SweepsFailed), one a second while
                # it lasts: RQ keeps each an hour, not its default year; the log keeps the trace.
                queue.enqueue("workers.scheduled.tick", result_ttl=0, failure_ttl=3600)
        except Exception:
            log.exception("clock could not enqueue the tick")
        stop.wait(TICK_SECONDS)


def run_worker(settings: Settings, *, burst: bool = False) -> int:
    if not settings.redis_url:
        raise SystemExit("soxara worker needs SOXARA_REDIS_URL; without it jobs run inside `soxara serve`")
    # SimpleWorker runs each job in this process. RQ's default Worker forks a work horse
    # per job, which here meant a new PostgreSQL connection per job as well: 44 ms of CPU
    # and 17 jobs/s against 8 ms and 82 jobs/s (a message delivery job, measured). Our jobs
    # are short database and HTTP calls, safe to retry; RQ's job timeout still applies
    # (a signal in this, the main thread).
    from rq import SimpleWorker

    from api.trace import install_logging
    from workers.queue import RQQueue

    install_logging()
    from core.rails import rails_for

    logging.getLogger("soxara.rails").info(rails_for(settings).describe_live())
    q = RQQueue(settings.redis_url)
    stop = threading.Event()
    if not burst:
        threading.Thread(target=_clock, args=(q.redis, q.queue, stop), daemon=True).start()
    try:
        SimpleWorker([q.queue], connection=q.redis).work(with_scheduler=True, burst=burst)
    finally:
        stop.set()
        time.sleep(0)
    return 0
