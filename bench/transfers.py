"""How many user-to-user transfers a second the API makes, against the same transfer in raw SQL.

    make bench-transfers                 # or: .venv/bin/python -m bench.transfers --help

1. creates a fresh PostgreSQL database and migrates it (dropped at the end, always);
2. makes `--users` people through core, as tests/api/test_transfer_storm_pg.py does: a
   funded test USD wallet (sandbox.make_buyer), a PIN, a session (an access token) and a
   step-up token each;
3. serves the product (`wsgi:app`) under gunicorn, the settings of bench/api.py, and
   concurrent keep-alive clients send `POST /v1/transfers`: a random sender and another
   random recipient among the users, a few cents, a fresh X-Idempotency-Key each, the
   sender's X-Step-Up-Token. Every one must answer 201;
4. the baseline, in the same run, from as many concurrent clients (threads, each with
   its own psycopg2 connection): the same transfer as raw SQL on the same tables, the
   least a transfer takes. One transaction: the journal entry, the transfer row, the two
   balances in account-id order by conditional `UPDATE … RETURNING balance` (the row
   lock, the no-overdraft check and the new balance in one statement), the two postings
   with `balance_after`; COMMIT. What core.wallets.ledger.post does, without the API around it;
5. a second baseline, to split the gap: raw SQL that sends PostgreSQL exactly what one
   API transfer sends it (its prepared statements, 7 round trips, one commit; see
   `_ReplicaClient`), without the Python around it;
6. the API and the minimal raw SQL again with every transfer from one single sender
   (the hot wallet: all of them queue on one row lock);
7. the five are measured in turn, in short slices (--rounds), so that whatever else the
   machine does weighs on all alike; prints transfers/s, p50 and p99 of each, the ratios
   to raw SQL, then runs the ledger check (every invariant, on every row all of them
   wrote), checks that the users' money is conserved to the cent, and prints the CPU
   gunicorn spent per API transfer.

The issue's target: the API reaches at least half the raw-SQL rate. Clients and server
share the machine's cores, so absolute figures are a floor; the ratio, measured the same
way in the same run, is the comparable part. docs/bench-transfers.md has the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from bench.harness import (
    BenchDatabase,
    Gunicorn,
    HttpClient,
    add_load_arguments,
    bench_env,
    load_options,
    new_secret,
    print_table,
    ratio,
    run_interleaved,
)

PIN = "5739"
FIRST_PHONE = 887_000_000  # +231887000000, +231887000001, …
FUNDS = 100_000_00  # $100,000 each: a few cents a transfer never runs a wallet dry
MAX_CENTS = 100


@dataclass(frozen=True)
class Person:
    user_id: str
    wallet_id: str
    phone: str
    token: str
    step_up: str
    session_id: str
    step_up_hash: str


# --- setup --------------------------------------------------------------------------------


def seed(env: dict, n: int) -> list[Person]:
    """n people, through core: funded test wallet, PIN, session and step-up token."""
    from sqlalchemy import select

    from core.config import Settings
    from core.identity import pins, sessions
    from core.runtime import Runtime
    from core.wallets import sandbox

    rt = Runtime(Settings.from_env(env))
    people = []
    try:
        for i in range(n):
            phone = f"+231{FIRST_PHONE + i}"
            with rt.uow() as uow:
                user, wallet = sandbox.make_buyer(uow, phone, amount=FUNDS)
                pins.set_pin(uow, user.id, PIN)
                tokens = sessions.start(uow, rt, user.id)
                uow.commit()
            with rt.uow() as uow:  # step_up judges the PIN before this transaction begins
                step, _ = pins.step_up(uow, rt, user.id, PIN, session_id=tokens.session_id)
                uow.commit()
                step_hash = uow.session.scalar(select(pins.StepUpToken.token_hash)
                                               .where(pins.StepUpToken.user_id == user.id))
                assert step_hash is not None
            people.append(Person(user.id, wallet.id, phone, tokens.access_token, step, tokens.session_id,
                                 step_hash))
    finally:
        rt.dispose()
    return people


# --- the two ways of making a transfer ----------------------------------------------------


@dataclass
class Transfers:
    """Transfers between random people (from the first one always, with `hot`), a few
    cents each, made `via` the API (`target`: gunicorn's port), or raw SQL or its replica
    of the API's statements (`target`: the database URL)."""

    name: str
    via: str  # "api" | "rawflask" | "procflask" | "raw" | "replica"
    target: int | str
    people: list[Person]
    hot: bool = False

    def client(self, index: int) -> _ApiClient | _RawClient:
        clients: dict[str, type[_ApiClient] | type[_RawClient]] = {
            "api": _ApiClient, "rawflask": _RawFlaskClient, "procflask": _ProcFlaskClient,
            "raw": _RawClient, "replica": _ReplicaClient}
        return clients[self.via](self)

    def pick(self, rng: random.Random) -> tuple[Person, Person, int]:
        """(sender, recipient, amount in cents): two distinct people."""
        n = len(self.people)
        s = 0 if self.hot else rng.randrange(n)
        r = rng.randrange(n - 1)
        return self.people[s], self.people[r + 1 if r >= s else r], rng.randint(1, MAX_CENTS)


class _ApiClient:
    """POST /v1/transfers through gunicorn, as the sender (access + step-up token)."""

    def __init__(self, load: Transfers):
        self.load, self.rng, self.http = load, random.Random(), HttpClient(int(load.target))

    def once(self) -> bool:
        src, dst, amount = self.load.pick(self.rng)
        body = json.dumps({"amount": amount, "currency": "USD", "to_phone_number": dst.phone}).encode()
        headers = {"Authorization": f"Bearer {src.token}", "X-Step-Up-Token": src.step_up,
                   "X-Idempotency-Key": uuid.uuid4().hex, "Content-Type": "application/json",
                   "Accept": "application/json"}
        return self.http.request("POST", "/v1/transfers", body, headers) == 201

    def close(self) -> None:
        self.http.close()


class _RawFlaskClient(_ApiClient):
    """POST /transfers to bench/rawflask.py: the raw-SQL transfer behind a bare Flask route."""

    def once(self) -> bool:
        src, dst, amount = self.load.pick(self.rng)
        body = json.dumps({"from_user": src.user_id, "from_wallet": src.wallet_id, "to_user": dst.user_id,
                           "to_wallet": dst.wallet_id, "to_phone": dst.phone, "amount": amount}).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        return self.http.request("POST", "/transfers", body, headers) == 201


class _ProcFlaskClient(_ApiClient):
    """POST /transfers to bench/procflask.py: the API's statements as one PL/pgSQL call."""

    def once(self) -> bool:
        src, dst, amount = self.load.pick(self.rng)
        body = json.dumps({"session": src.session_id, "from_user": src.user_id, "step_up_hash": src.step_up_hash,
                           "to_phone": dst.phone, "amount": amount}).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        return self.http.request("POST", "/transfers", body, headers) == 201


# Conditional: never below zero (the same condition core.wallets.ledger.post puts on the row).
DEBIT_OR_CREDIT = ("UPDATE accounts SET balance = balance + %(amount)s WHERE id = %(id)s "
                   "AND (may_go_negative OR balance + %(amount)s >= 0) RETURNING balance")
ENTRY = ("INSERT INTO journal_entries (id, kind, obj_type, obj_id, livemode, currency, memo, created_at) "
         "VALUES (%s, 'transfer', 'transfer', %s, false, 'USD', '', %s)")
POSTINGS = ("INSERT INTO postings (id, entry_id, account_id, amount, balance_after, kind, obj_type, obj_id, "
            "created_at) VALUES (%s, %s, %s, %s, %s, 'transfer', 'transfer', %s, %s), "
            "(%s, %s, %s, %s, %s, 'transfer', 'transfer', %s, %s)")
TRANSFER = ("INSERT INTO transfers (id, livemode, sender_type, sender_id, sender_wallet_id, to_phone_number, "
            "recipient_user_id, amount, currency, status, created_at, succeeded_at) "
            "VALUES (%s, false, 'user', %s, %s, %s, %s, %s, 'USD', 'succeeded', %s, %s)")


class _RawClient:
    """The same transfer as raw SQL through psycopg2: one transaction, 5 statements, in
    the order core issues them (entry and transfer, then the balances, then postings)."""

    def __init__(self, load: Transfers):
        import psycopg2

        self.load, self.rng = load, random.Random()
        self.conn = psycopg2.connect(str(load.target))

    def once(self) -> bool:
        src, dst, amount = self.load.pick(self.rng)
        try:
            with self.conn.cursor() as cur:
                ok = self.transaction(cur, src, dst, amount)
            (self.conn.commit if ok else self.conn.rollback)()
            return ok
        except Exception:
            self.conn.rollback()
            return False

    def transaction(self, cur, src: Person, dst: Person, amount: int) -> bool:
        return self.move(cur, src, dst, amount)[0] is not None

    @staticmethod
    def move(cur, src: Person, dst: Person, amount: int) -> tuple[str | None, datetime]:
        """The money: (the transfer's id, or None for insufficient funds; a timestamp)."""
        from core.db import utcnow
        from core.ids import new_id

        tid, jid, now = new_id("tr"), new_id("jrn"), utcnow()
        cur.execute(ENTRY, (jid, tid, now))
        cur.execute(TRANSFER, (tid, src.user_id, src.wallet_id, dst.phone, dst.user_id, amount, now, now))
        legs = {src.wallet_id: -amount, dst.wallet_id: amount}
        after = {}
        for wallet_id in sorted(legs):  # fixed lock order: no deadlocks
            cur.execute(DEBIT_OR_CREDIT, {"amount": legs[wallet_id], "id": wallet_id})
            row = cur.fetchone()
            if row is None:  # insufficient funds: the caller rolls back, nothing moves
                return None, now
            after[wallet_id] = row[0]
        cur.execute(POSTINGS, (new_id("txn"), jid, src.wallet_id, -amount, after[src.wallet_id], tid, now,
                               new_id("txn"), jid, dst.wallet_id, amount, after[dst.wallet_id], tid, now))
        return tid, now

    def close(self) -> None:
        self.conn.close()


class _ReplicaClient(_RawClient):
    """What one API transfer sends to PostgreSQL, round trip for round trip, without the
    Python around it: the very prepared statements core defines (core/db.py `Statement`),
    PREPAREd once on this connection, with the same values and in the same batches.

    As PostgreSQL's own log of `POST /v1/transfers` shows (docs/bench-transfers.md):
    BEGIN; the session; the step-up token; the idempotency key's lock and record; the
    transfer's parties (with the sender's balance); [the transfer, the journal entry, each
    balance and its posting, two events, the notice, the stored outcome]; COMMIT. 7 round
    trips, one commit. (The notice's delivery, batched with others in a transaction of its
    own, is not replicated.)
    """

    def __init__(self, load: Transfers):
        super().__init__(load)
        from core import idempotency
        from core.events import events
        from core.identity import pins, sessions
        from core.messaging import outbox
        from core.wallets import ledger, transfers

        self.statements = {
            "session": sessions._LIVE_SESSION, "step_up": pins._LIVE_STEP_UP,
            "claim": idempotency._LOOKUP_LOCKED, "store": idempotency._STORE,
            "parties": transfers._PARTIES_OF["user"], "transfer": transfers._INSERT,
            "entry": ledger._INSERT_ENTRY, "move": ledger._MOVE, "posting": ledger._INSERT_POSTING,
            "event": events._INSERT, "notice": outbox._QUEUE,
        }
        with self.conn.cursor() as cur:
            for stmt in self.statements.values():
                cur.execute(stmt.pg_prepare)
        self.conn.commit()

    def _sql(self, cur, name: str, **params) -> bytes:
        return cur.mogrify(self.statements[name].pg_execute, params)

    def _run(self, cur, *parts: bytes):
        cur.execute(b";".join(parts))
        return cur.fetchall() if cur.description is not None else []

    def transaction(self, cur, src: Person, dst: Person, amount: int) -> bool:
        from core.db import utcnow
        from core.ids import new_id

        now = utcnow()
        sql = lambda name, **params: self._sql(cur, name, **params)  # noqa: E731
        self._run(cur, sql("session", id=src.session_id, user_id=src.user_id))  # psycopg2 sends BEGIN first
        self._run(cur, sql("step_up", token_hash=src.step_up_hash, user_id=src.user_id,
                           session_id=src.session_id, now=now))
        scope, key = "usr:" + src.user_id, uuid.uuid4().hex
        self._run(cur, sql("claim", now=now, lock=random.getrandbits(63), scope=scope, key=key))
        src_wallet, balance, _, _, _, dst_wallet = self._run(cur, sql(
            "parties", sender_type="user", sender_id=src.user_id, currency="USD", livemode=False,
            to_phone=dst.phone))[0]
        if balance < amount:
            return False
        tid, jid = new_id("tr"), new_id("jrn")
        transfer = dict(id=tid, livemode=False, sender_type="user", sender_id=src.user_id,
                        sender_wallet_id=src_wallet, to_phone_number=dst.phone, recipient_user_id=dst.user_id,
                        amount=amount, currency="USD", note=None, status="succeeded", claim_code_hash=None,
                        claim_expires_at=None, auto_claim_at=None, created_at=now, succeeded_at=now)
        common = dict(kind="transfer", obj_type="transfer", obj_id=tid, created_at=now)
        where = dict(currency="USD", livemode=False)
        legs = sorted([(src_wallet, -amount), (dst_wallet, amount)])
        snapshot = json.dumps({"id": tid, "object": "transfer", "amount": amount, "pad": "x" * 300})
        event = dict(livemode=False, merchant_id=None, object_type="transfer", object_id=tid, data=snapshot,
                     created_at=now, relay_pending=False)
        money = [part for wallet, delta in legs for part in (
            sql("move", amount=delta, account_id=wallet, **where),
            sql("posting", id=new_id("txn"), entry_id=jid, account_id=wallet, moved=wallet, amount=delta,
                **where, **common))]
        self._run(cur,
                  sql("transfer", **transfer),
                  sql("entry", id=jid, memo="", **where, **common),
                  *money,
                  sql("event", id=new_id("evt"), type="transfer.created", **event),
                  sql("event", id=new_id("evt"), type="transfer.succeeded", **event),
                  sql("notice", id=new_id("msg"), to_phone=dst.phone, channel="bench",
                      body=f"You received ${amount / 100:.2f} from {src.phone}. Ref {tid}", sealed_body=None,
                      status="sent", attempts=0, next_attempt_at=None, created_at=now),
                  sql("store", scope=scope, key=key, fingerprint=uuid.uuid4().hex * 2, response_status=201,
                      response_sealed=os.urandom(600), created_at=now, expires_at=now + timedelta(hours=24)))
        return True


# --- after the run ------------------------------------------------------------------------


def aftermath(env: dict, people: list[Person]) -> dict:
    """The ledger check over every row both ways wrote, and money conserved to the cent."""
    import sqlalchemy as sa

    from core.config import Settings
    from core.runtime import Runtime
    from core.wallets import ledger

    rt = Runtime(Settings.from_env(env))
    try:
        with rt.uow() as uow:
            s = uow.session
            total = s.scalar(sa.text("SELECT sum(balance) FROM accounts WHERE id = ANY(:ids)"),
                             {"ids": [p.wallet_id for p in people]})
            return {
                "transfers": s.scalar(sa.text("SELECT count(*) FROM transfers")),
                # Each API transfer writes the recipient's WhatsApp notice (the replica's are 'bench').
                "api_transfers": s.scalar(sa.text("SELECT count(*) FROM outbound_messages WHERE channel = 'whatsapp'")),
                "messages_sent": s.scalar(sa.text("SELECT count(*) FROM outbound_messages "
                                                  "WHERE channel = 'whatsapp' AND status = 'sent'")),
                "postings": s.scalar(sa.text("SELECT count(*) FROM postings")),
                "ledger_breaches": ledger.check(uow),
                "money_conserved": total == FUNDS * len(people),
            }
    finally:
        rt.dispose()


# --- the run ------------------------------------------------------------------------------


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="bench.transfers", description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=50, help="funded users the transfers run among (50)")
    add_load_arguments(p, clients=8, duration=12.0, warmup=2.0, rounds=4)
    args = p.parse_args(argv)
    # Step-up tokens last 5 minutes: the whole load must fit well inside them.
    if not (1 <= args.clients <= 64 and 2 <= args.users <= 500 and 0 < args.duration <= 40
            and 0 <= args.warmup <= 10 and 1 <= args.rounds <= 10):
        p.error("keep it bounded: 1-64 clients, 2-500 users, at most 40 s per scenario, "
                "10 s of warm-up and 10 rounds")

    started = time.time()
    log_path = os.path.join(tempfile.gettempdir(), f"soxara-bench-transfers-{os.getpid()}.log")
    with BenchDatabase() as url:
        env = bench_env(url, new_secret())
        people = seed(env, args.users)
        seeded = time.time()
        server = Gunicorn("wsgi:app", env, workers=args.workers, threads=args.threads, log_path=log_path)
        from bench.procflask import create_function

        create_function(url)
        ceilings = [Gunicorn(f"bench.{app}:app", env, workers=args.workers, threads=args.threads,
                             log_path=log_path) for app in ("rawflask", "procflask")]
        try:
            for s in [server, *ceilings]:
                s.wait_ready("/healthz")
            cpu_before = server.cpu_seconds()
            raw, replica, flask_raw, flask_proc, api, raw_hot, api_hot = run_interleaved([
                Transfers("raw SQL (psycopg2)", "raw", url, people),
                Transfers("raw SQL, the API's statements", "replica", url, people),
                Transfers("raw SQL behind a bare Flask route", "rawflask", ceilings[0].port, people),
                Transfers("API's statements, one PL/pgSQL call", "procflask", ceilings[1].port,
                          people),
                Transfers("POST /v1/transfers", "api", server.port, people),
                Transfers("raw SQL, one hot sender", "raw", url, people, hot=True),
                Transfers("POST /v1/transfers, one hot sender", "api", server.port, people, hot=True),
            ], **load_options(args))
            cpu_after = server.cpu_seconds()
        finally:
            for s in [server, *ceilings]:
                s.stop()
        after = aftermath(env, people)

    print(f"gunicorn gthread, {args.workers} workers x {args.threads} threads; {args.clients} concurrent clients "
          f"(keep-alive HTTP, or one psycopg2 connection each) in {args.client_procs} processes; "
          f"{args.users} users; {args.warmup:g} s warm-up, then {args.duration:g} s measured per scenario in "
          f"{args.rounds} interleaved slices; PostgreSQL; {os.cpu_count()} cores shared by clients, server "
          f"and database")
    rows = [raw, replica, flask_raw, flask_proc, api, raw_hot, api_hot]
    print_table(rows, unit="tr/s", baseline=[None, raw, raw, raw, raw, None, raw_hot], base_label="raw", width=36)
    print(f"API / raw SQL: {ratio(api.per_second, raw.per_second):.2f} (target >= 0.5); one hot sender: "
          f"API {api_hot.per_second:.0f}/s, raw {raw_hot.per_second:.0f}/s "
          f"({ratio(api_hot.per_second, raw_hot.per_second):.2f}); the API's own statements as raw SQL "
          f"reach {ratio(replica.per_second, raw.per_second):.2f} of raw, the API "
          f"{ratio(api.per_second, replica.per_second):.2f} of them")
    print(f"the ceiling for any Flask route under this gunicorn: the raw-SQL transfer behind a bare route "
          f"reaches {ratio(flask_raw.per_second, raw.per_second):.2f} of raw; the API "
          f"{ratio(api.per_second, flask_raw.per_second):.2f} of that ceiling; the API's statements as one "
          f"PL/pgSQL call behind a bare route reach {ratio(flask_proc.per_second, raw.per_second):.2f} of raw")
    breaches = after["ledger_breaches"]
    print(f"ledger check: {'the ledger balances' if not breaches else f'{len(breaches)} BREACHES'} "
          f"({after['transfers']} transfers, {after['postings']} postings); users' money "
          f"{'conserved to the cent' if after['money_conserved'] else 'NOT CONSERVED'}")
    for b in breaches[:10]:
        print("  " + b)
    if cpu_before is not None and cpu_after is not None and after["api_transfers"]:
        # The raw slices leave gunicorn idle but for its 1 s scheduler tick.
        cpu_ms = (cpu_after - cpu_before) * 1000 / after["api_transfers"]
        after["server_cpu_ms_per_api_transfer"] = round(cpu_ms, 2)
        print(f"gunicorn's CPU: {cpu_ms:.1f} ms per API transfer ({after['api_transfers']} made, with their "
              f"WhatsApp notices: {after['messages_sent']} of {after['api_transfers']} delivered by the workers' job "
              f"threads), so at most {1000 / cpu_ms:.0f} API transfers/s per core wholly given to gunicorn")
    print(f"total {time.time() - started:.0f} s (setup {seeded - started:.0f} s); server log: {log_path}")
    if args.json:
        print(json.dumps({"results": [r.__dict__ for r in rows], "after": after}, indent=2))
    return 1 if any(r.errors for r in rows) or breaches or not after["money_conserved"] else 0


if __name__ == "__main__":
    sys.exit(main())
