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
import http.client
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST = "127.0.0.1"
PG_ADMIN_URL = os.environ.get("SOXARA_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
SECRET = "bench-secret-key-" + uuid.uuid4().hex


# --- load generation ---------------------------------------------------------------------


@dataclass
class Scenario:
    name: str
    method: str
    path: str
    token: str | None = None
    body: bytes | None = None
    expect: int = 200

    def request(self) -> tuple[str, str, bytes | None, dict]:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.method in ("POST", "PATCH", "DELETE"):
            headers["X-Idempotency-Key"] = uuid.uuid4().hex
            headers["Content-Type"] = "application/json"
        return self.method, self.path, self.body, headers


def _client_thread(port, scenario, measure_from, measure_until, out, errors):
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    while True:
        method, path, body, headers = scenario.request()
        t0 = time.perf_counter()
        if t0 >= measure_until:
            break
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            ok = resp.status == scenario.expect
            if resp.will_close:
                conn.close()
        except (OSError, http.client.HTTPException):
            ok = False
            conn.close()
            conn = http.client.HTTPConnection(HOST, port, timeout=30)
        t1 = time.perf_counter()
        if t0 >= measure_from:
            if ok:
                out.append(t1 - t0)
            else:
                errors.append(1)
    conn.close()


def _client_process(args) -> tuple[list[float], int]:
    port, scenario, threads, start_at, warmup, duration = args
    # perf_counter is per-process monotonic; anchor the shared wall-clock start to it.
    delay = start_at - time.time()
    base = time.perf_counter() + delay
    measure_from, measure_until = base + warmup, base + warmup + duration
    if delay > 0:
        time.sleep(delay)
    lat: list[float] = []
    errors: list[int] = []
    ts = [threading.Thread(target=_client_thread, args=(port, scenario, measure_from, measure_until, lat, errors))
          for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return lat, len(errors)


@dataclass
class Result:
    name: str
    requests: int
    errors: int
    rps: float
    p50_ms: float
    p99_ms: float


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[i]


def _load_slice(port: int, scenario: Scenario, *, clients: int, procs: int, warmup: float,
                duration: float) -> tuple[list[float], int]:
    procs = max(1, min(procs, clients))
    per = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    start_at = time.time() + 0.3
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(procs) as pool:
        parts = pool.map(_client_process, [(port, scenario, n, start_at, warmup, duration) for n in per])
    return [x for part, _ in parts for x in part], sum(e for _, e in parts)


def _result(name: str, lat: list[float], errors: int, duration: float) -> Result:
    lat = sorted(lat)
    return Result(name, len(lat), errors, len(lat) / duration,
                  _percentile(lat, 0.50) * 1000, _percentile(lat, 0.99) * 1000)


def run_interleaved(targets: list[tuple[int, Scenario]], *, rounds: int, clients: int, procs: int,
                    warmup: float, duration: float) -> list[Result]:
    """Each scenario `duration` seconds in all, in `rounds` slices taken in turn.

    Whatever else the machine does in the meantime then weighs on every scenario alike,
    which is what keeps the ratios to the baseline meaningful on a shared machine.
    """
    acc = {s.name: ([], 0) for _, s in targets}
    for port, scenario in targets:  # warm every server and pool once, unmeasured
        _load_slice(port, scenario, clients=clients, procs=procs, warmup=0, duration=warmup)
    for _ in range(rounds):
        for port, scenario in targets:
            lat, errors = _load_slice(port, scenario, clients=clients, procs=procs, warmup=0.2,
                                      duration=duration / rounds)
            acc[scenario.name][0].extend(lat)
            acc[scenario.name] = (acc[scenario.name][0], acc[scenario.name][1] + errors)
    return [_result(s.name, *acc[s.name], duration) for _, s in targets]


# --- servers and database ------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Gunicorn:
    """One gunicorn master we started (its own process group), stopped by its pid."""

    def __init__(self, app_spec: str, env: dict, *, workers: int, threads: int, log_path: str,
                 worker_class: str = "gthread"):
        self.port = _free_port()
        self.log = open(log_path, "ab")
        cmd = [sys.executable, "-m", "gunicorn", app_spec, "--bind", f"{HOST}:{self.port}",
               "--worker-class", worker_class, "--workers", str(workers), "--threads", str(threads),
               "--keep-alive", "75", "--backlog", "2048", "--log-level", "warning",
               "--graceful-timeout", "5"]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def wait_ready(self, path: str, timeout: float = 30.0) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}; see {self.log.name}")
            try:
                c = http.client.HTTPConnection(HOST, self.port, timeout=2)
                c.request("GET", path)
                if c.getresponse().status == 200:
                    c.close()
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer {path} within {timeout}s; see {self.log.name}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log.close()


class BenchDatabase:
    """A fresh, migrated PostgreSQL database, dropped on exit."""

    def __enter__(self) -> str:
        import sqlalchemy as sa

        from core.db import driver_url
        from migrations.runner import upgrade

        self.admin = sa.create_engine(driver_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
        self.name = f"soxara_bench_{uuid.uuid4().hex[:10]}"
        with self.admin.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{self.name}"'))
        self.url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + self.name
        upgrade(self.url)
        return self.url

    def __exit__(self, *exc) -> None:
        import sqlalchemy as sa

        with self.admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()


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
    p.add_argument("--clients", type=int, default=8, help="concurrent keep-alive clients (8)")
    p.add_argument("--client-procs", type=int, default=2, help="processes the clients run in (2)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="gunicorn workers (one per core)")
    p.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (4)")
    p.add_argument("--worker-class", default="gthread", choices=["gthread", "sync"],
                   help="gunicorn worker class (gthread; sync closes every connection)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds measured per scenario (10)")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured load first (2)")
    p.add_argument("--rounds", type=int, default=5, help="slices each scenario is measured in, in turn (5)")
    p.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = p.parse_args(argv)
    if args.clients < 1 or args.clients > 256 or args.duration <= 0 or args.duration > 120:
        p.error("keep it bounded: 1-256 clients, at most 120 s per scenario")

    started = time.time()
    log_path = os.path.join(tempfile.gettempdir(), f"soxara-bench-{os.getpid()}.log")
    load = dict(rounds=max(1, args.rounds), clients=args.clients, procs=args.client_procs,
                warmup=args.warmup, duration=args.duration)
    gun = dict(workers=args.workers, threads=args.threads, log_path=log_path, worker_class=args.worker_class)

    with BenchDatabase() as url:
        env = {**os.environ, "SOXARA_ENV": "development", "SOXARA_DATABASE_URL": url,
               "SOXARA_SECRET_KEY": SECRET, "SOXARA_INPROCESS_JOBS": "thread"}
        env.pop("SOXARA_REDIS_URL", None)
        key = _create_merchant(env)

        # Both servers stay up (an idle one costs nothing); the load goes to one at a time.
        servers = [Gunicorn("wsgi:app", env, **gun), Gunicorn("bench.hello:app", env, **gun)]
        product, hello = servers
        try:
            product.wait_ready("/healthz")
            hello.wait_ready("/hello")
            baseline, *results = run_interleaved([
                (hello.port, Scenario("GET /hello (bare Flask)", "GET", "/hello")),
                (product.port, Scenario("GET /v1/merchant", "GET", "/v1/merchant", key)),
                (product.port, Scenario("POST /v1/merchant/api-keys", "POST", "/v1/merchant/api-keys", key,
                                        json.dumps({"name": "bench", "scopes": ["payments:read"]}).encode(),
                                        expect=201)),
            ], **load)
        finally:
            for server in servers:
                server.stop()

    print(f"gunicorn {args.worker_class}, {args.workers} workers x {args.threads} threads; {args.clients} keep-alive "
          f"clients in {args.client_procs} processes; {args.warmup:g} s warm-up, then {args.duration:g} s "
          f"measured per scenario in {load['rounds']} interleaved slices; PostgreSQL; "
          f"{os.cpu_count()} cores shared by clients and server")
    print(f"{'scenario':<30}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'req/s vs base':>15}{'p50 vs base':>13}")
    for r in [baseline, *results]:
        ratio = r.rps / baseline.rps if baseline.rps else float("nan")
        lat_ratio = r.p50_ms / baseline.p50_ms if baseline.p50_ms else float("nan")
        print(f"{r.name:<30}{r.rps:>9.0f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{r.errors:>8}"
              f"{ratio:>14.2f}x{lat_ratio:>12.2f}x")
    print(f"total {time.time() - started:.0f} s; server log: {log_path}")
    if args.json:
        print(json.dumps({"baseline": baseline.__dict__, "results": [r.__dict__ for r in results]}, indent=2))
    return 1 if any(r.errors for r in [baseline, *results]) else 0


if __name__ == "__main__":
    sys.exit(main())
