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
import json
import os
import sys
import tempfile
import time
import urllib.parse
import uuid
from dataclasses import dataclass

from bench.harness import (
    BenchDatabase,
    Gunicorn,
    HttpClient,
    bench_env,
    load_slice,
    new_secret,
    print_table,
    result,
)

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

    from core.config import Settings
    from core.db import utcnow
    from core.identity import pins, users
    from core.messaging import conversations
    from core.runtime import Runtime
    from core.wallets import adjustments, wallets

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


@dataclass
class Chat:
    """Phones chatting through `path`: client thread t owns phones t, t + clients, …, and
    sends, phone after phone, each one's next message of its script (so one phone's
    messages are strictly one after another, as a person's are)."""

    port: int
    path: str
    kind: str
    phones: int
    clients: int

    def client(self, index: int) -> _ChatClient:
        return _ChatClient(self, list(range(self.phones))[index::self.clients])


class _ChatClient:
    def __init__(self, chat: Chat, my_phones: list[int]):
        self.chat, self.my_phones, self.k = chat, my_phones, 0
        self.http = HttpClient(chat.port, timeout=60)
        self.scripts = {i: script(i, chat.phones, chat.kind) for i in my_phones}
        # Phones start at different points of the script, as people do: PIN messages (argon2)
        # are spread over time instead of arriving in waves.
        self.step = {i: i * 5 for i in my_phones}

    def once(self) -> bool:
        i = self.my_phones[self.k % len(self.my_phones)]
        self.k += 1
        text = self.scripts[i][self.step[i] % len(self.scripts[i])]
        self.step[i] += 1
        body, headers = _signed(self.chat.path, phone_number(i), text)
        return self.http.request("POST", self.chat.path, body, headers) == 200

    def close(self) -> None:
        self.http.close()


# --- after the run ---------------------------------------------------------------------------


def _aftermath(env: dict) -> dict:
    """What the chatting did: transfers made, replies queued and sent, and the ledger."""
    import sqlalchemy as sa

    from core.config import Settings
    from core.runtime import Runtime
    from core.wallets import ledger

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
        env = bench_env(url, new_secret(), SOXARA_TWILIO_AUTH_TOKEN=TWILIO_TOKEN, SOXARA_PUBLIC_URL=PUBLIC_URL)
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
                    measured[name].append(load_slice(
                        Chat(server.port, path, kind, args.phones, args.clients), clients=args.clients,
                        procs=args.client_procs, warmup=args.warmup if n == 0 else 1.0,
                        duration=args.duration / args.slices))
            echo, *bots = [result(name, [x for lat, _ in measured[name] for x in lat],
                                  sum(e for _, e in measured[name]), args.duration) for name, _, _ in scenarios]
            time.sleep(2)  # let the workers' job threads send the last replies
        finally:
            server.stop()
        after = _aftermath(env)

    print(f"gunicorn gthread, {args.workers} workers x {args.threads} threads; {args.phones} phones "
          f"over {args.clients} keep-alive connections in {args.client_procs} processes; "
          f"{args.warmup:g} s warm-up + {args.duration:g} s measured per scenario in {args.slices} "
          f"interleaved slices; PostgreSQL; "
          f"{os.cpu_count()} cores shared by clients and server")
    print_table([echo, *bots], unit="msg/s", baseline=echo, base_label="echo", width=36)
    print("after: " + ", ".join(f"{k} {v}" for k, v in after.items()))
    print(f"total {time.time() - started:.0f} s; server log: {log_path}")
    if args.json:
        print(json.dumps({"echo": echo.__dict__, "webhook": [b.__dict__ for b in bots], "after": after},
                         indent=2))
    return 1 if echo.errors or any(b.errors for b in bots) or after["ledger_breaches"] else 0


if __name__ == "__main__":
    sys.exit(main())
