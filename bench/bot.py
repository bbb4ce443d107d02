"""How many WhatsApp messages a second the bot's webhook takes, against a bare signed echo.

    make bench-bot                       # or: .venv/bin/python -m bench.bot --help

1. creates a fresh PostgreSQL database and migrates it (dropped at the end, always);
2. seeds `--phones` users, each funded, with a PIN and a logged-in conversation at the
   menu (logging in by OTP is rate limited per phone, by design, so it is not benched);
3. serves the product under gunicorn, with one extra route defined only here:
   `POST /bench/echo` checks the Twilio signature exactly as the webhook does and
   answers the same empty TwiML, and does nothing else. It is the baseline: what
   Flask, gunicorn and the signature cost, without the bot;
4. many phones chat at once: client threads each own a share of the phones and send,
   phone after phone, the next message of a script (balance, history, a send of $1 to
   another phone with its confirmation and PIN, help, a send abandoned at the
   confirmation, the menu). One phone's messages are strictly one after another, as a
   person's are. Every request is form-encoded and signed like Twilio's;
5. the same load, the same signed forms, against `/bench/echo`, in the same run, in
   interleaved slices (echo, webhook, echo, webhook…) so both see the same machine;
6. prints messages/s, p50 and p99 of the webhook's response time for each and their
   ratio, then checks the ledger and counts the transfers the bot made.

`--script menu` runs the same script without the PIN step (no argon2, no money moves),
which shows what the bot costs apart from core's deliberately slow PIN hash; the
default runs both, after the echo, against the same server.

Replies are sent by the in-process job runner of each gunicorn worker (the sandbox
transport), so their cost is on the same machine, though not in the response time.
Clients and server share the machine's cores: absolute figures are a floor, the ratio
to the echo measured in the same run is the comparable part.
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
import urllib.parse
import uuid
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST = "127.0.0.1"
PG_ADMIN_URL = os.environ.get("SOXARA_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
SECRET = "bench-secret-key-" + uuid.uuid4().hex
TWILIO_TOKEN = "bench-twilio-token-" + uuid.uuid4().hex
PUBLIC_URL = "https://soxara.bench.example"
WEBHOOK, ECHO = "/whatsapp/webhook", "/bench/echo"
PIN = "4821"
FIRST_PHONE = 886_200_000  # +231886200000, +231886200001, …


def phone_number(i: int) -> str:
    return f"+231{FIRST_PHONE + i}"


def script(i: int, phones: int, kind: str = "mixed") -> list[str]:
    """What phone i says, over and over. The peer is another seeded phone.

    "mixed": a real send ($1, confirmed with the PIN) among menu traffic; "menu": the
    same without the PIN step, so no argon2 and no money moves.
    """
    peer = phone_number((i + 1) % phones)
    if kind == "menu":
        return ["BAL", "4", f"SEND 1 USD {peer}", "NO", "HELP",
                "2", "2.50", "USD", "0" + peer[4:], "NO", "MENU"]
    return ["BAL", "4", f"SEND 1 USD {peer}", "YES", PIN, "HELP",
            "2", "2.50", "USD", "0" + peer[4:], "NO", "MENU"]


# --- the app gunicorn serves: the product plus the echo --------------------------------------


def bench_app():
    """`gunicorn 'bench.bot:bench_app()'`: the product, plus the signed echo baseline."""
    from flask import request

    from api.app import create_app
    from bot.webhook import empty_twiml, public_url_for, signature_ok

    app = create_app()
    settings = app.extensions["soxara"].settings

    @app.post(ECHO)
    def bench_echo():
        url = public_url_for(settings, request.path)
        if not signature_ok(settings, url, request.form, request.headers.get("X-Twilio-Signature"), None):
            return "", 403
        return empty_twiml()

    return app


# --- seeding ---------------------------------------------------------------------------------


def seed(env: dict, phones: int) -> None:
    """Phones as people who logged in earlier today: a user, a PIN, money, a session."""
    from datetime import timedelta

    from core import adjustments, conversations, pins, users, wallets
    from core.config import Settings
    from core.db import utcnow
    from core.runtime import Runtime

    rt = Runtime(Settings.from_env(env))
    with rt.uow() as uow:
        for i in range(phones):
            u = users.get_or_create(uow, phone_number(i), f"Bench {i}")
            pins.set_pin(uow, u.id, PIN)
            w = wallets.wallet_for(uow, wallets.USER, u.id, "USD", rt.settings.user_mode_live)
            uow.session.flush()
            adjustments.adjust(uow, wallet_id=w.id, amount=1_000_000_00, reason="bench funds")
            convo, _ = conversations.lock(uow, u.phone_number, "menu")
            convo.user_id, convo.state = u.id, "menu"
            convo.session_expires_at = utcnow() + timedelta(days=1)
            convo.last_inbound_at = utcnow()
        uow.commit()
    rt.dispose()


# --- load generation -------------------------------------------------------------------------


def _signed(path: str, phone: str, body: str) -> tuple[bytes, dict]:
    from twilio.request_validator import RequestValidator

    form = {"MessageSid": "SM" + uuid.uuid4().hex, "AccountSid": "AC" + "0" * 32,
            "From": f"whatsapp:{phone}", "To": "whatsapp:+231770000000", "Body": body,
            "NumMedia": "0", "ProfileName": "Bench", "WaId": phone.lstrip("+")}
    sig = RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC_URL + path, form)
    return urllib.parse.urlencode(form).encode(), {
        "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig}


def _client_thread(port, path, kind, my_phones, total_phones, measure_from, measure_until, out, errors):
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    scripts = {i: script(i, total_phones, kind) for i in my_phones}
    # Phones start at different points of the script, as people do: PIN messages (argon2)
    # are spread over time instead of arriving in waves.
    step = {i: i * 5 for i in my_phones}
    k = 0
    while True:
        i = my_phones[k % len(my_phones)]
        k += 1
        text = scripts[i][step[i] % len(scripts[i])]
        step[i] += 1
        body, headers = _signed(path, phone_number(i), text)
        t0 = time.perf_counter()
        if t0 >= measure_until:
            break
        try:
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            ok = resp.status == 200
            if resp.will_close:
                conn.close()
        except (OSError, http.client.HTTPException):
            ok = False
            conn.close()
            conn = http.client.HTTPConnection(HOST, port, timeout=60)
        t1 = time.perf_counter()
        if t0 >= measure_from:
            (out if ok else errors).append(t1 - t0)
    conn.close()


def _client_process(args) -> tuple[list[float], int]:
    port, path, kind, phone_sets, total_phones, start_at, warmup, duration = args
    delay = start_at - time.time()
    base = time.perf_counter() + delay
    measure_from, measure_until = base + warmup, base + warmup + duration
    if delay > 0:
        time.sleep(delay)
    lat: list[float] = []
    errors: list[float] = []
    ts = [threading.Thread(target=_client_thread,
                           args=(port, path, kind, ps, total_phones, measure_from, measure_until, lat, errors))
          for ps in phone_sets]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return lat, len(errors)


@dataclass
class Result:
    name: str
    messages: int
    errors: int
    per_second: float
    p50_ms: float
    p99_ms: float


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))]


def run_load(port: int, path: str, *, phones: int, clients: int, procs: int,
             warmup: float, duration: float, kind: str = "mixed") -> tuple[list[float], int]:
    """One slice of load: (latencies of the answered messages, errors)."""
    threads = [list(range(phones))[t::clients] for t in range(clients)]
    threads = [t for t in threads if t]
    procs = max(1, min(procs, len(threads)))
    per_proc = [threads[p::procs] for p in range(procs)]
    start_at = time.time() + 0.5
    with multiprocessing.get_context("fork").Pool(procs) as pool:
        parts = pool.map(_client_process, [(port, path, kind, ps, phones, start_at, warmup, duration)
                                           for ps in per_proc])
    return [x for part, _ in parts for x in part], sum(e for _, e in parts)


def summarise(name: str, slices: list[tuple[list[float], int]], duration: float) -> Result:
    lat = sorted(x for part, _ in slices for x in part)
    errors = sum(e for _, e in slices)
    return Result(name, len(lat), errors, len(lat) / duration,
                  _percentile(lat, 0.50) * 1000, _percentile(lat, 0.99) * 1000)


# --- servers and database --------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Gunicorn:
    """One gunicorn master we started (its own process group), stopped by its pid."""

    def __init__(self, app_spec: str, env: dict, *, workers: int, threads: int, log_path: str):
        self.port = _free_port()
        self.log = open(log_path, "ab")
        cmd = [sys.executable, "-m", "gunicorn", app_spec, "--bind", f"{HOST}:{self.port}",
               "--worker-class", "gthread", "--workers", str(workers), "--threads", str(threads),
               "--keep-alive", "75", "--backlog", "2048", "--log-level", "warning",
               "--graceful-timeout", "5"]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}; see {self.log.name}")
            try:
                c = http.client.HTTPConnection(HOST, self.port, timeout=2)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    c.close()
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not start within {timeout}s; see {self.log.name}")

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


def _aftermath(env: dict) -> dict:
    """What the chatting did: transfers made, replies queued and sent, and the ledger."""
    import sqlalchemy as sa

    from core import ledger
    from core.config import Settings
    from core.runtime import Runtime

    rt = Runtime(Settings.from_env(env))
    with rt.uow() as uow:
        s = uow.session
        out = {
            "inbound_messages": s.scalar(sa.text("SELECT count(*) FROM inbound_messages")),
            "transfers": s.scalar(sa.text("SELECT count(*) FROM transfers")),
            "replies": s.scalar(sa.text("SELECT count(*) FROM outbound_messages")),
            "replies_sent": s.scalar(sa.text("SELECT count(*) FROM outbound_messages WHERE status = 'sent'")),
            "ledger_breaches": len(ledger.check(uow)),
        }
    rt.dispose()
    return out


# --- the run ---------------------------------------------------------------------------------


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="bench.bot", description=__doc__.split("\n\n")[0])
    p.add_argument("--phones", type=int, default=200, help="phones chatting at once (200)")
    p.add_argument("--clients", type=int, default=16, help="concurrent keep-alive connections (16)")
    p.add_argument("--client-procs", type=int, default=2, help="processes the clients run in (2)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="gunicorn workers (one per core)")
    p.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (4)")
    p.add_argument("--duration", type=float, default=15.0, help="seconds measured per scenario (15)")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of unmeasured load first (3)")
    p.add_argument("--slices", type=int, default=3,
                   help="the measured seconds come in this many interleaved slices per scenario (3)")
    p.add_argument("--script", choices=("mixed", "menu", "both"), default="both",
                   help="mixed: menu traffic with a PIN-confirmed send; menu: without the PIN step; "
                        "both (default): each, one after the other")
    p.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = p.parse_args(argv)
    if not (1 <= args.clients <= 256 and 1 <= args.phones <= 5000 and 0 < args.duration <= 120
            and 1 <= args.slices <= 20):
        p.error("keep it bounded: 1-256 clients, 1-5000 phones, at most 120 s per scenario")
    args.clients = min(args.clients, args.phones)

    started = time.time()
    log_path = os.path.join(tempfile.gettempdir(), f"soxara-bench-bot-{os.getpid()}.log")

    with BenchDatabase() as url:
        env = {**os.environ, "SOXARA_ENV": "development", "SOXARA_DATABASE_URL": url,
               "SOXARA_SECRET_KEY": SECRET, "SOXARA_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
               "SOXARA_PUBLIC_URL": PUBLIC_URL, "SOXARA_INPROCESS_JOBS": "thread"}
        env.pop("SOXARA_REDIS_URL", None)
        env.pop("SOXARA_TWILIO_ACCOUNT_SID", None)  # the sandbox transport: never a real send
        seed(env, args.phones)
        server = Gunicorn("bench.bot:bench_app()", env, workers=args.workers, threads=args.threads,
                          log_path=log_path)
        try:
            server.wait_ready()
            kinds = ("mixed", "menu") if args.script == "both" else (args.script,)
            scenarios = [(f"POST {ECHO} (signed echo)", ECHO, "mixed")] + \
                [(f"POST {WEBHOOK} ({k})", WEBHOOK, k) for k in kinds]
            measured: dict[str, list] = {name: [] for name, _, _ in scenarios}
            # Interleaved slices: a shared machine's load drifts, and each scenario should
            # see the same drift as its baseline.
            for n in range(args.slices):
                for name, path, kind in scenarios:
                    measured[name].append(run_load(
                        server.port, path, kind=kind, phones=args.phones, clients=args.clients,
                        procs=args.client_procs, warmup=args.warmup if n == 0 else 1.0,
                        duration=args.duration / args.slices))
            echo, *bots = [summarise(name, measured[name], args.duration) for name, _, _ in scenarios]
            time.sleep(2)  # let the workers' job threads send the last replies
        finally:
            server.stop()
        after = _aftermath(env)

    print(f"gunicorn gthread, {args.workers} workers x {args.threads} threads; {args.phones} phones "
          f"over {args.clients} keep-alive connections in {args.client_procs} processes; "
          f"{args.warmup:g} s warm-up + {args.duration:g} s measured per scenario in {args.slices} "
          f"interleaved slices; PostgreSQL; "
          f"{os.cpu_count()} cores shared by clients and server")
    print(f"{'scenario':<36}{'msg/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'vs echo':>9}")
    for r in (echo, *bots):
        ratio = r.per_second / echo.per_second if echo.per_second else float("nan")
        print(f"{r.name:<36}{r.per_second:>8.0f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{r.errors:>8}{ratio:>8.2f}x")
    print("after: " + ", ".join(f"{k} {v}" for k, v in after.items()))
    print(f"total {time.time() - started:.0f} s; server log: {log_path}")
    if args.json:
        print(json.dumps({"echo": echo.__dict__, "webhook": [b.__dict__ for b in bots], "after": after},
                         indent=2))
    return 1 if echo.errors or any(b.errors for b in bots) or after["ledger_breaches"] else 0


if __name__ == "__main__":
    sys.exit(main())
