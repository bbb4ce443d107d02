"""How many message deliveries a second one `soxara worker` process runs off Redis, with
RQ's forking Worker against the SimpleWorker `soxara worker` uses, in the same run.

    make bench-jobs                      # or: .venv/bin/python -m bench.jobs --help

1. creates a fresh PostgreSQL database and migrates it (dropped at the end, always);
2. for each worker class in turn: queues `--messages` WhatsApp messages through core (each
   enqueues its delivery job on a fresh RQ queue of its own), then runs that worker class
   in burst mode until the queue is empty, timing it and counting the CPU this process
   and its forked work horses spent;
3. prints jobs/s, CPU per job and the ratio of SimpleWorker to Worker, then checks that
   every message was sent exactly once (the sandbox transport: nothing leaves the box).

Needs Redis (SOXARA_BENCH_REDIS, default redis://127.0.0.1:6379/0).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import uuid

from bench.harness import BenchDatabase, bench_env, new_secret, ratio

REDIS_URL = os.environ.get("SOXARA_BENCH_REDIS", "redis://127.0.0.1:6379/0")


def _cpu_seconds() -> float:
    """This process's CPU and its waited-for children's (RQ's work horses)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run(worker_class, rt, n: int) -> dict:
    """Queue n deliveries, then drain them with `worker_class`: its figures."""
    from rq import Queue

    from core.messaging import outbox
    from workers import context
    from workers.queue import RQQueue

    q = RQQueue(REDIS_URL)
    q.queue = Queue(f"bench-jobs-{uuid.uuid4().hex}", connection=q.redis)
    rt.jobs = q
    ids = []
    for i in range(n):
        with rt.uow() as uow:
            ids.append(outbox.send_whatsapp(uow, rt, f"+23188{i:07d}", f"bench message {i}").id)
            uow.commit()
    context.set_process_runtime(rt)  # what the worker's jobs run against (a fork inherits it)
    try:
        cpu, started = _cpu_seconds(), time.perf_counter()
        worker_class([q.queue], connection=q.redis).work(burst=True, logging_level="WARNING")
        elapsed, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    finally:
        context.set_process_runtime(None)
        q.queue.delete(delete_jobs=True)
    with rt.uow() as uow:
        sent = sum(1 for m in (outbox.get(uow, i) for i in ids) if m is not None and m.status == "sent")
    return {"name": worker_class.__name__, "jobs": n, "seconds": elapsed, "per_second": n / elapsed,
            "cpu_ms_per_job": cpu * 1000 / n, "sent": sent}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="bench.jobs", description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=int, default=300, help="deliveries per worker class (300)")
    args = p.parse_args(argv)
    if not 1 <= args.messages <= 5000:
        p.error("keep it bounded: 1-5000 messages")
    from rq import SimpleWorker, Worker

    from core.config import Settings
    from workers.runtime import build_runtime

    with BenchDatabase() as url:
        rt = build_runtime(Settings.from_env({**bench_env(url, new_secret()), "SOXARA_REDIS_URL": REDIS_URL}))
        try:
            forking, simple = run(Worker, rt, args.messages), run(SimpleWorker, rt, args.messages)
        finally:
            rt.dispose()
    print(f"{args.messages} WhatsApp deliveries per worker class, one worker process, RQ on Redis, PostgreSQL, "
          f"sandbox transport; {os.cpu_count()} cores")
    print(f"{'worker class':<28}{'jobs/s':>9}{'CPU ms/job':>12}{'sent':>7}")
    for r in (forking, simple):
        print(f"{r['name'] + (' (forks per job)' if r['name'] == 'Worker' else ''):<28}"
              f"{r['per_second']:>9.0f}{r['cpu_ms_per_job']:>12.1f}{r['sent']:>7}")
    print(f"SimpleWorker / Worker: {ratio(simple['per_second'], forking['per_second']):.1f}x the jobs/s, "
          f"{ratio(forking['cpu_ms_per_job'], simple['cpu_ms_per_job']):.1f}x less CPU per job")
    ok = forking["sent"] == simple["sent"] == args.messages
    print("every message sent once" if ok else "SOME MESSAGES WERE NOT SENT")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
