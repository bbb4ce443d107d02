"""How fast the merchant API answers under gunicorn, against a bare Flask baseline.

    make bench-api                       # or: .venv/bin/python -m bench.api --help

1. creates a fresh PostgreSQL database and migrates it (dropped at the end, always);
2. creates a merchant and its test key with `soxara merchant create`, as an operator would;
3. serves the product (`wsgi:app`) under gunicorn, and N concurrent keep-alive clients
   measure (a) `GET /v1/merchant` and (b) `POST /v1/merchant/api-keys`, a fresh
   X-Idempotency-Key each time (a real mint: claim, insert, sealed outcome, commit);
4. serves bench/hello.py, a bare Flask route, under the very same gunicorn settings, and
   measures it as (c), the baseline. The three are measured in turn, in short slices
   (--rounds), so that whatever else the machine does weighs on all of them alike;
5. prints requests/s, p50 and p99 for each, and each one's ratio to the baseline.

Gunicorn: gthread workers, one per core, 4 threads each (see --workers/--threads). A
thread worker keeps connections alive (a sync worker closes each one, so every request
would pay a TCP handshake that real clients behind a keep-alive proxy do not), and its
threads overlap the database round trips; one process per core because the Python work
between round trips holds the GIL. The clients are processes of threads (the GIL would
otherwise cap the load generator before the server), on loopback only. Clients and
server share the machine's cores, so absolute figures are a floor; the ratios to the
baseline, measured the same way in the same run, are the comparable part.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from bench.harness import (
    ROOT,
    BenchDatabase,
    Gunicorn,
    Scenario,
    add_load_arguments,
    bench_env,
    load_options,
    new_secret,
    print_table,
    run_interleaved,
)


def _create_merchant(env: dict) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "api.cli", "merchant", "create", "--name", "Bench Shop",
         "--scopes", "merchant:read", "api_keys:manage"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True, timeout=60,
    )
    return json.loads(out.stdout)["test_key"]["key"]


# --- the run -------------------------------------------------------------------------------


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="bench.api", description=__doc__.split("\n\n")[0])
    add_load_arguments(p, clients=8, duration=10.0, warmup=2.0, rounds=5)
    p.add_argument("--worker-class", default="gthread", choices=["gthread", "sync"],
                   help="gunicorn worker class (gthread; sync closes every connection)")
    args = p.parse_args(argv)
    if args.clients < 1 or args.clients > 256 or args.duration <= 0 or args.duration > 120:
        p.error("keep it bounded: 1-256 clients, at most 120 s per scenario")

    started = time.time()
    log_path = os.path.join(tempfile.gettempdir(), f"soxara-bench-{os.getpid()}.log")
    load = load_options(args)
    gun = dict(workers=args.workers, threads=args.threads, log_path=log_path, worker_class=args.worker_class)

    with BenchDatabase() as url:
        env = bench_env(url, new_secret())
        key = _create_merchant(env)

        # Both servers stay up (an idle one costs nothing); the load goes to one at a time.
        servers = [Gunicorn("wsgi:app", env, **gun), Gunicorn("bench.hello:app", env, **gun)]
        product, hello = servers
        try:
            product.wait_ready("/healthz")
            hello.wait_ready("/hello")
            baseline, *results = run_interleaved([
                Scenario("GET /hello (bare Flask)", hello.port, "GET", "/hello"),
                Scenario("GET /v1/merchant", product.port, "GET", "/v1/merchant", key),
                Scenario("POST /v1/merchant/api-keys", product.port, "POST", "/v1/merchant/api-keys", key,
                         json.dumps({"name": "bench", "scopes": ["payments:read"]}).encode(), expect=201),
            ], **load)
        finally:
            for server in servers:
                server.stop()

    print(f"gunicorn {args.worker_class}, {args.workers} workers x {args.threads} threads; {args.clients} keep-alive "
          f"clients in {args.client_procs} processes; {args.warmup:g} s warm-up, then {args.duration:g} s "
          f"measured per scenario in {load['rounds']} interleaved slices; PostgreSQL; "
          f"{os.cpu_count()} cores shared by clients and server")
    print_table([baseline, *results], baseline=baseline)
    print(f"total {time.time() - started:.0f} s; server log: {log_path}")
    if args.json:
        print(json.dumps({"baseline": baseline.__dict__, "results": [r.__dict__ for r in results]}, indent=2))
    return 1 if any(r.errors for r in [baseline, *results]) else 0


if __name__ == "__main__":
    sys.exit(main())
