"""`soxara serve` (the web app under gunicorn) and `soxara worker` (RQ with the scheduler)."""

from __future__ import annotations

import argparse
import os
import sys

from core.config import Settings


def cmd_serve(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    from migrations.runner import upgrade

    if settings.is_sqlite:
        # The embedded default should just work on a fresh checkout.
        upgrade(settings.database_url)
    workers = args.workers or (1 if not settings.redis_url else 2 * (os.cpu_count() or 1) + 1)
    if not settings.redis_url and workers > 1:
        print("without SOXARA_REDIS_URL jobs run in process: serving with one worker", file=sys.stderr)
        workers = 1
    argv = [sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"{args.host}:{args.port}",
            "--workers", str(workers), "--threads", str(args.threads),
            "--access-logfile", "-", "--graceful-timeout", "5",
            # the access line of a request carries its trace id too
            "--access-logformat", '%(h)s "%(r)s" %(s)s %(b)s %(M)sms trace=%({x-trace-id}o)s']
    address = f"http://{args.host}:{args.port}"
    print(f"Soxara at {address} " + (f"(sandbox chat: {address}/dev/whatsapp)" if settings.sandbox else ""),
          file=sys.stderr, flush=True)  # flushed: execv replaces this process
    os.execv(sys.executable, argv)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from workers.service import run_worker

    return run_worker(Settings.from_env(), burst=args.burst)


def register(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("serve", help="run the web app under gunicorn")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=5000)
    s.add_argument("--workers", type=int, default=0)
    s.add_argument("--threads", type=int, default=8)
    s.set_defaults(fn=cmd_serve)

    w = sub.add_parser("worker", help="run an RQ worker with the scheduler")
    w.add_argument("--burst", action="store_true", help="exit once the queue is empty")
    w.set_defaults(fn=cmd_worker)
