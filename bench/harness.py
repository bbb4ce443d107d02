"""What the benchmarks share: a fresh PostgreSQL database, gunicorn, keep-alive load, figures.

    with BenchDatabase() as url:                       # created, migrated; dropped on exit
        env = bench_env(url)
        server = Gunicorn("wsgi:app", env, workers=2, threads=4, log_path=...)
        server.wait_ready("/healthz")
        results = run_interleaved([load_a, load_b], rounds=5, clients=8, procs=2,
                                  warmup=2, duration=10)
        server.stop()
        print_table(results, baseline=results[0])

A load is any picklable object with a `name` and a `client(index)` method that returns
an object with `once() -> bool` (do one operation; True if it went as expected) and
`close()`. Each client thread owns one client (one keep-alive HTTP connection, one
database connection…), and runs `once()` back to back. Client threads run in a few
processes, so that the GIL caps the server before it caps the load generator.

Clients and servers share the machine's cores: absolute figures are a floor, and only
figures measured the same way in the same run compare. `run_interleaved` measures the
loads in turn, in short slices, so that whatever else the machine does weighs on all of
them alike.
"""

from __future__ import annotations

import http.client
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST = "127.0.0.1"
PG_ADMIN_URL = os.environ.get("SOXARA_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def new_secret() -> str:
    return "bench-secret-key-" + uuid.uuid4().hex


def bench_env(url: str, secret: str, **extra: str) -> dict:
    """The server's environment: development (sandbox rails and messages), the given
    database, in-process jobs on a thread (no Redis), and nothing sent for real."""
    env = {**os.environ, "SOXARA_ENV": "development", "SOXARA_DATABASE_URL": url,
           "SOXARA_SECRET_KEY": secret, "SOXARA_INPROCESS_JOBS": "thread", **extra}
    env.pop("SOXARA_REDIS_URL", None)
    env.pop("SOXARA_TWILIO_ACCOUNT_SID", None)  # the sandbox transport: never a real send
    return env


# --- the database and the server --------------------------------------------------------------


class BenchDatabase:
    """A fresh, migrated PostgreSQL database, dropped on exit (whatever happened)."""

    def __enter__(self) -> str:
        import sqlalchemy as sa

        from core.db import driver_url
        from migrations.runner import upgrade

        self.admin = sa.create_engine(driver_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
        self.name = f"soxara_bench_{uuid.uuid4().hex[:10]}"
        with self.admin.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{self.name}"'))
        self.url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + self.name
        try:
            upgrade(self.url)
        except BaseException:
            self.__exit__()
            raise
        return self.url

    def __exit__(self, *exc) -> None:
        import sqlalchemy as sa

        with self.admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Gunicorn:
    """One gunicorn master we started (its own process group), stopped by its pid.

    gthread workers by default: a thread worker keeps connections alive (a sync worker
    closes each one, so every request would pay a TCP handshake that real clients behind
    a keep-alive proxy do not), and its threads overlap the database round trips.
    """

    def __init__(self, app_spec: str, env: dict, *, workers: int, threads: int, log_path: str,
                 worker_class: str = "gthread"):
        self.port = free_port()
        self.log = open(log_path, "ab")
        cmd = [sys.executable, "-m", "gunicorn", app_spec, "--bind", f"{HOST}:{self.port}",
               "--worker-class", worker_class, "--workers", str(workers), "--threads", str(threads),
               "--keep-alive", "75", "--backlog", "2048", "--log-level", "warning",
               "--graceful-timeout", "5"]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def wait_ready(self, path: str = "/healthz", timeout: float = 30.0) -> None:
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

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system) the master and its live workers have used so far,
        from /proc (Linux); None where there is no /proc."""
        def stat(pid: str) -> list[str] | None:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    return f.read().rsplit(")", 1)[1].split()
            except OSError:
                return None

        if not os.path.isdir("/proc"):
            return None
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
            fields = stat(pid)
            # fields[1] is the parent's pid; [11], [12] user and system time in ticks
            if fields and (pid == str(self.proc.pid) or fields[1] == str(self.proc.pid)):
                total += int(fields[11]) + int(fields[12])
        return total / tick

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log.close()


# --- clients ------------------------------------------------------------------------------


class HttpClient:
    """One keep-alive connection; reconnects after an error or a `Connection: close`."""

    def __init__(self, port: int, timeout: float = 30.0):
        self.port, self.timeout = port, timeout
        self.conn = http.client.HTTPConnection(HOST, port, timeout=timeout)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None) -> int | None:
        """The response's status, or None when the request failed on the wire."""
        try:
            self.conn.request(method, path, body=body, headers=headers or {})
            resp = self.conn.getresponse()
            resp.read()
            if resp.will_close:
                self.conn.close()
            return resp.status
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
            return None

    def close(self) -> None:
        self.conn.close()


@dataclass
class Scenario:
    """An HTTP load: the same request again and again (a fresh X-Idempotency-Key on a
    mutation), counted as expected when it answers `expect`."""

    name: str
    port: int
    method: str
    path: str
    token: str | None = None
    body: bytes | None = None
    expect: int = 200

    def headers(self) -> dict:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.method in ("POST", "PATCH", "DELETE"):
            headers["X-Idempotency-Key"] = uuid.uuid4().hex
            headers["Content-Type"] = "application/json"
        return headers

    def client(self, index: int) -> _ScenarioClient:
        return _ScenarioClient(self)


class _ScenarioClient:
    def __init__(self, scenario: Scenario):
        self.s = scenario
        self.http = HttpClient(scenario.port)

    def once(self) -> bool:
        return self.http.request(self.s.method, self.s.path, self.s.body, self.s.headers()) == self.s.expect

    def close(self) -> None:
        self.http.close()


# --- load generation -------------------------------------------------------------------------


def _client_thread(load, index, measure_from, measure_until, out, errors):
    client = load.client(index)
    try:
        while True:
            t0 = time.perf_counter()
            if t0 >= measure_until:
                break
            ok = client.once()
            t1 = time.perf_counter()
            if t0 >= measure_from:
                (out if ok else errors).append(t1 - t0)
    finally:
        client.close()


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot, all cores (/proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _client_process(args) -> tuple[list[float], int, float, float]:
    """(latencies, errors, this process's CPU seconds in the measured window, and the
    machine's busy CPU seconds in it: measured by the first process only, else 0)."""
    load, indexes, start_at, warmup, duration = args
    # perf_counter is per-process monotonic; anchor the shared wall-clock start to it.
    delay = start_at - time.time()
    base = time.perf_counter() + delay
    measure_from, measure_until = base + warmup, base + warmup + duration
    if delay > 0:
        time.sleep(delay)
    lat: list[float] = []
    errors: list[float] = []
    window: dict[str, float] = {}

    def watch() -> None:  # CPU at the start and the end of the measured window
        for edge in ("from", "until"):
            time.sleep(max(0.0, (measure_from if edge == "from" else measure_until) - time.perf_counter()))
            window[edge] = time.process_time()
            window["machine_" + edge] = machine_busy_seconds() if 0 in indexes else 0.0

    ts = [threading.Thread(target=_client_thread, args=(load, i, measure_from, measure_until, lat, errors))
          for i in indexes] + [threading.Thread(target=watch)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return (lat, len(errors), window["until"] - window["from"],
            window["machine_until"] - window["machine_from"])


def load_slice(load, *, clients: int, procs: int, warmup: float, duration: float,
               cpu: dict | None = None) -> tuple[list[float], int]:
    """`clients` concurrent clients of `load`, in `procs` processes, for warmup + duration
    seconds: (the latencies of the expected answers measured, the number of others).
    `cpu`, if given, accumulates the measured window's CPU seconds: "client" (the load
    generator's processes) and "machine" (every core, whoever spent it)."""
    procs = max(1, min(procs, clients))
    start_at = time.time() + 0.3
    with multiprocessing.get_context("fork").Pool(procs) as pool:
        parts = pool.map(_client_process, [(load, list(range(clients))[p::procs], start_at, warmup, duration)
                                           for p in range(procs)])
    if cpu is not None:
        cpu["client"] = cpu.get("client", 0.0) + sum(p[2] for p in parts)
        cpu["machine"] = cpu.get("machine", 0.0) + sum(p[3] for p in parts)
    return [x for part, *_ in parts for x in part], sum(p[1] for p in parts)


@dataclass
class Result:
    name: str
    count: int
    errors: int
    per_second: float
    p50_ms: float
    p99_ms: float
    # CPU per operation in the measured windows: the whole machine's (clients, server and
    # database together), and the load generator's share of it.
    machine_cpu_ms: float = float("nan")
    client_cpu_ms: float = float("nan")


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))]


def result(name: str, lat: list[float], errors: int, duration: float, cpu: dict | None = None) -> Result:
    lat = sorted(lat)
    per_op = {k: v * 1000 / len(lat) for k, v in (cpu or {}).items()} if lat else {}
    return Result(name, len(lat), errors, len(lat) / duration,
                  percentile(lat, 0.50) * 1000, percentile(lat, 0.99) * 1000,
                  per_op.get("machine", float("nan")), per_op.get("client", float("nan")))


def run_interleaved(loads: list, *, rounds: int, clients: int, procs: int, warmup: float,
                    duration: float) -> list[Result]:
    """Each load `duration` seconds in all, in `rounds` slices taken in turn, after one
    unmeasured `warmup` slice each (servers, pools and caches warm)."""
    acc: dict[str, tuple[list[float], int]] = {load.name: ([], 0) for load in loads}
    cpu: dict[str, dict] = {load.name: {} for load in loads}
    for load in loads:
        load_slice(load, clients=clients, procs=procs, warmup=0, duration=warmup)
    for _ in range(max(1, rounds)):
        for load in loads:
            lat, errors = load_slice(load, clients=clients, procs=procs, warmup=0.2, duration=duration / rounds,
                                     cpu=cpu[load.name])
            acc[load.name][0].extend(lat)
            acc[load.name] = (acc[load.name][0], acc[load.name][1] + errors)
    return [result(load.name, *acc[load.name], duration, cpu[load.name]) for load in loads]


def add_load_arguments(p, *, clients: int = 8, duration: float = 10.0, warmup: float = 2.0,
                       rounds: int = 5) -> None:
    """The options every benchmark takes: the load, the server's size, --json."""
    p.add_argument("--clients", type=int, default=clients, help=f"concurrent clients ({clients})")
    p.add_argument("--client-procs", type=int, default=2, help="processes the clients run in (2)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="gunicorn workers (one per core)")
    p.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (4)")
    p.add_argument("--duration", type=float, default=duration, help=f"seconds measured per scenario ({duration:g})")
    p.add_argument("--warmup", type=float, default=warmup,
                   help=f"seconds of unmeasured load first, per scenario ({warmup:g})")
    p.add_argument("--rounds", type=int, default=rounds,
                   help=f"slices each scenario is measured in, in turn ({rounds})")
    p.add_argument("--json", action="store_true", help="also print the results as JSON")


def load_options(args) -> dict:
    """run_interleaved's keyword arguments from add_load_arguments' options."""
    return dict(rounds=max(1, args.rounds), clients=args.clients, procs=args.client_procs,
                warmup=args.warmup, duration=args.duration)


# --- figures ---------------------------------------------------------------------------------


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def print_table(rows: list[Result], *, unit: str = "req/s", baseline: Result | list | None = None,
                base_label: str = "base", width: int = 30) -> None:
    """One line per result: rate, p50, p99, errors and, against a baseline (one for all
    rows, or a list with one per row, None for none), the ratios of its rate and p50."""
    bases = baseline if isinstance(baseline, list) else [baseline] * len(rows)
    rate_vs, p50_vs = f"{unit} vs {base_label}", f"p50 vs {base_label}"
    rw, pw = max(15, len(rate_vs) + 2), max(13, len(p50_vs) + 2)
    # Where measured: the machine's CPU per operation (every core: clients, server and
    # database) and the load generator's share of it.
    with_cpu = any(r.machine_cpu_ms == r.machine_cpu_ms for r in rows)  # not NaN
    head = f"{'scenario':<{width}}{unit:>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
    head += f"{'cpu ms/op':>11}{'client':>8}" if with_cpu else ""
    print(head + (f"{rate_vs:>{rw}}{p50_vs:>{pw}}" if baseline is not None else ""))
    for r, base in zip(rows, bases, strict=True):
        line = f"{r.name:<{width}}{r.per_second:>9.0f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{r.errors:>8}"
        line += f"{r.machine_cpu_ms:>11.2f}{r.client_cpu_ms:>8.2f}" if with_cpu else ""
        if base is not None:
            line += (f"{ratio(r.per_second, base.per_second):>{rw - 1}.2f}x"
                     f"{ratio(r.p50_ms, base.p50_ms):>{pw - 1}.2f}x")
        print(line)
