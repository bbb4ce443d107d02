"""Webhook deliveries a second by N `soxara worker` processes to a local receiver, and how
long an event waits from its commit to its first attempt, beside a plain loop of signed
POSTs to the same receiver in the same run.

    make bench-webhooks                  # or: .venv/bin/python -m bench.webhooks --help

1. creates a fresh PostgreSQL database and migrates it (dropped at the end, always), and
   `--endpoints` merchants with one test-mode endpoint each on a receiver process on
   127.0.0.1 that checks every signature and notes when each event first arrived;
2. the baseline: one thread POSTs `--events` signed event bodies to the receiver, one
   after another, through the same HTTP sender the workers use (a new connection each);
3. for each worker count in `--workers`: starts that many `soxara worker` processes on a
   Redis database of their own, then
   - burst: commits `--events` events (spread over the merchants) as fast as one thread
     can, each in its own transaction as a payout would, and times until the receiver
     has every one: events delivered a second;
   - paced: commits `--paced` events at `--rate` a second and takes, for each, the time
     from its commit to its arrival at the receiver (its first attempt): p50 and p99;
4. prints the figures, the ratio of the workers' rate to the plain loop's, and checks
   every event arrived and none was handled twice.

Needs Redis (SOXARA_BENCH_REDIS, default redis://127.0.0.1:6379/0: the workers' queue is
emptied there, so give it a database nothing else uses).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bench.harness import ROOT, BenchDatabase, bench_env, new_secret, ratio

REDIS_URL = os.environ.get("SOXARA_BENCH_REDIS", "redis://127.0.0.1:6379/0")


# --- the receiver: its own process, so that its work does not share the bench's GIL --------

def _serve(secrets: dict[str, str], port_out) -> None:
    arrivals: dict[str, float] = {}
    counts: dict[str, int] = {}
    bad = [0]
    lock = threading.Lock()

    class Receiver(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            now = time.time()
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            header = self.headers.get("Soxara-Signature", "")
            items = [p.split("=", 1) for p in header.split(",") if "=" in p]
            t = dict(items).get("t", "")
            want = hmac.new(secrets.get(self.path, "").encode(), t.encode() + b"." + body,
                            hashlib.sha256).hexdigest()
            ok = any(hmac.compare_digest(want, v) for k, v in items if k == "v1")
            evt = self.headers.get("Soxara-Event-Id", "")
            with lock:
                if ok:
                    arrivals.setdefault(evt, now)
                    counts[evt] = counts.get(evt, 0) + 1
                else:
                    bad[0] += 1
            self.send_response(200 if ok else 400)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self):
            with lock:
                out = json.dumps({"arrivals": arrivals, "counts": counts, "bad": bad[0]}).encode()
                if self.path == "/reset":
                    arrivals.clear()
                    counts.clear()
            self.send_response(200)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.daemon_threads = True
    port_out.put(server.server_address[1])
    server.serve_forever()


def _stats(port: int, path: str = "/stats") -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return json.loads(r.read())


# --- the two ways of sending ------------------------------------------------------------

def plain_loop(port: int, paths: list[str], secrets: dict[str, str], n: int) -> float:
    """n signed POSTs, one after another: POSTs a second."""
    from core.webhooks import signature
    from workers.webhook_sender import HttpWebhookSender

    sender = HttpWebhookSender()
    started = time.perf_counter()
    for i in range(n):
        path = paths[i % len(paths)]
        evt = f"evt_loop{i:08d}"
        body = json.dumps({"id": evt, "object": "event", "type": "transfer.created", "livemode": False,
                           "data": {"object": {"id": f"tr_{i}"}}}).encode()
        headers = {signature.HEADER: signature.header([secrets[path]], int(time.time()), body),
                   signature.EVENT_ID_HEADER: evt}
        d = sender.send(f"http://127.0.0.1:{port}{path}", headers, body, 10)
        if not d.ok:
            raise SystemExit(f"the plain loop's POST failed: {d}")
    return n / (time.perf_counter() - started)


def commit_events(rt, merchants: list[str], n: int, rate: float | None = None) -> dict[str, float]:
    """Commit n merchant events (one transaction each, the relay prompted after each
    commit, as a payout does): {event id: when it committed}."""
    from core.events import events

    committed: dict[str, float] = {}
    started = time.perf_counter()
    for i in range(n):
        if rate:
            wait = started + i / rate - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
        with rt.uow() as uow:
            evt = events.record(uow, "transfer.created", object_type="transfer", object_id=f"tr_bench{i}",
                                snapshot={"id": f"tr_bench{i}", "object": "transfer", "amount": 100,
                                          "currency": "USD", "status": "succeeded"},
                                livemode=False, merchant_id=merchants[i % len(merchants)])
            uow.commit()
        committed[evt] = time.time()
    return committed


def wait_arrived(port: int, ids, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        s = _stats(port)
        if all(i in s["arrivals"] for i in ids) or time.monotonic() > deadline:
            return s
        time.sleep(0.05)


def start_workers(n: int, env: dict) -> list[subprocess.Popen]:
    from redis import Redis
    from rq import Worker

    procs = [subprocess.Popen([sys.executable, "-c", "import sys; from api.cli import main; sys.exit(main(['worker']))"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for _ in range(n)]
    redis = Redis.from_url(env["SOXARA_REDIS_URL"])
    deadline = time.monotonic() + 60
    while Worker.count(connection=redis) < n:
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            stop_workers(procs)
            raise SystemExit("the workers did not start")
        time.sleep(0.1)
    return procs


def stop_workers(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="bench.webhooks", description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=600, help="events in the burst, and POSTs in the loop (600)")
    p.add_argument("--paced", type=int, default=200, help="events for the latency figures (200)")
    p.add_argument("--rate", type=float, default=25.0, help="their rate, events a second (25)")
    p.add_argument("--endpoints", type=int, default=8, help="merchants, one endpoint each (8)")
    p.add_argument("--workers", default="1,2", help="worker process counts to measure (1,2)")
    args = p.parse_args(argv)
    counts = [int(w) for w in args.workers.split(",")]
    if not (1 <= args.events <= 20000 and 1 <= args.paced <= 5000 and 1 <= args.endpoints <= 16
            and all(1 <= c <= 16 for c in counts) and 0 < args.rate <= 500):
        p.error("keep it bounded: events 1-20000, paced 1-5000, endpoints 1-16, workers 1-16, rate up to 500")
    from redis import Redis

    from core.config import Settings
    from core.merchants.merchants import create_merchant
    from core.webhooks import endpoints
    from workers.queue import RQQueue
    from workers.runtime import build_runtime

    secret_key = new_secret()
    with BenchDatabase() as url:
        env = bench_env(url, secret_key)
        env["SOXARA_REDIS_URL"] = REDIS_URL
        Redis.from_url(REDIS_URL).flushdb()
        rt = build_runtime(Settings.from_env(env), jobs=None)
        rt.jobs = RQQueue(REDIS_URL)
        merchants: list[str] = []
        secrets: dict[str, str] = {}
        paths: list[str] = []
        with rt.uow() as uow:
            merchants = [create_merchant(uow, f"Bench shop {i}").id for i in range(args.endpoints)]
            uow.commit()
        made = [(mid, f"/m{i}") for i, mid in enumerate(merchants)]
        port_q: multiprocessing.Queue = multiprocessing.Queue()
        # the receiver needs the secrets, and the endpoints its port: made with a placeholder
        with rt.uow() as uow:
            created = [(path, endpoints.create(uow, secret_key, merchant_id=mid, livemode=False,
                                               url="http://127.0.0.1:1/", events=["*"]))
                       for mid, path in made]
            uow.commit()
        for path, c in created:
            secrets[path] = c.secret
            paths.append(path)
        receiver = multiprocessing.Process(target=_serve, args=(secrets, port_q), daemon=True)
        receiver.start()
        port = port_q.get(timeout=30)
        with rt.uow() as uow:
            for path, c in created:
                e = uow.get(endpoints.WebhookEndpoint, c.endpoint.id, what="webhook endpoint")
                e.url = f"http://127.0.0.1:{port}{path}"
            uow.commit()
        results = []
        ok = True
        try:
            loop_rate = plain_loop(port, paths, secrets, args.events)
            _stats(port, "/reset")
            for n in counts:
                procs = start_workers(n, env)
                try:
                    began = time.time()
                    burst = commit_events(rt, merchants, args.events)
                    s = wait_arrived(port, burst, timeout=300)
                    arrived = [s["arrivals"][e] for e in burst if e in s["arrivals"]]
                    elapsed = max(arrived) - began if arrived else 0
                    delivered = len(arrived)
                    paced = commit_events(rt, merchants, args.paced, rate=args.rate)
                    s = wait_arrived(port, paced, timeout=120)
                    waits = [(s["arrivals"][e] - t) * 1000 for e, t in paced.items() if e in s["arrivals"]]
                    dupes = sum(1 for c in s["counts"].values() if c > 1)
                    ok = ok and delivered == args.events and len(waits) == args.paced and s["bad"] == 0
                    results.append({"workers": n, "per_second": delivered / elapsed if elapsed else 0,
                                    "delivered": delivered + len(waits), "sent": args.events + args.paced,
                                    "p50": statistics.median(waits) if waits else float("nan"),
                                    "p99": pct(waits, 0.99) if waits else float("nan"), "dupes": dupes})
                    _stats(port, "/reset")
                finally:
                    stop_workers(procs)
                    Redis.from_url(REDIS_URL).flushdb()
        finally:
            receiver.terminate()
            rt.dispose()
    print(f"webhook deliveries to a receiver on 127.0.0.1 ({args.endpoints} endpoints), PostgreSQL, RQ on Redis, "
          f"`soxara worker` processes; {os.cpu_count()} cores")
    print(f"plain loop of signed POSTs (one thread, a connection each): {loop_rate:.0f} POSTs/s")
    print(f"{'workers':>8}{'events/s':>10}{'÷ loop':>8}{'commit→1st attempt p50':>24}{'p99':>9}"
          f"{'delivered':>11}{'twice':>7}")
    for r in results:
        print(f"{r['workers']:>8}{r['per_second']:>10.0f}{ratio(r['per_second'], loop_rate):>7.2f}x"
              f"{r['p50']:>21.0f} ms{r['p99']:>6.0f} ms{r['delivered']:>6}/{r['sent']:<5}{r['dupes']:>6}")
    print(f"(p50/p99 over {args.paced} events committed at {args.rate:g}/s; events/s over a burst of {args.events})")
    print("every event delivered" if ok else "SOME EVENTS WERE NOT DELIVERED (or a signature failed)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
