"""Wallet payments a second through the API, against the same run's raw-SQL transfer.

    make bench-payments                  # or: .venv/bin/python -m bench.payments --help

1. creates a fresh PostgreSQL database and migrates it (dropped at the end, always);
2. makes `--customers` sandbox buyers (funded test USD wallets) and `--merchants`
   merchants with a test key each, through core;
3. serves the product (`wsgi:app`) under gunicorn; concurrent keep-alive clients each
   make one payment per operation: `POST /v1/payments` then `POST /v1/payments/{id}/confirm`
   with `soxara_wallet` and a random sandbox buyer's phone, which settles at once (a
   merchant's test key, a sandbox buyer): the buyer debited, the merchant credited net, the
   fee to the fees account, in one ledger entry. Every one must end `succeeded`;
4. the same, every payment to one merchant (its wallet is the hot row);
5. the baseline, in the same run and from as many clients: the raw-SQL user-to-user
   transfer of bench/transfers.py (one transaction through psycopg2, the least a money
   move takes);
6. the three measured in turn, in short slices; prints payments/s, p50 and p99, and
   the ratios to raw SQL;
7. the hot-wallet burst: `--burst` customers (200) each pay one merchant at the same
   moment (released by a barrier, one thread and connection each): how long until all
   are answered, every one must succeed, and the merchant's balance must be the sum of
   the nets to the cent;
8. the ledger check over every row.

A payment is two HTTP requests (create, confirm) and the raw transfer one transaction:
the ratio says what a payment costs against the least a money move costs, not a like-for-
like request. Every payment also credits the fees account of its currency and mode, which
is one row for all merchants: a hot row even when the merchants are spread.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass

from bench.harness import (
    BenchDatabase,
    Gunicorn,
    HttpClient,
    add_load_arguments,
    bench_env,
    load_options,
    new_secret,
    percentile,
    print_table,
    ratio,
    run_interleaved,
)
from bench.transfers import Person, Transfers

FIRST_PHONE = 887_500_000
FUNDS = 100_000_00


@dataclass(frozen=True)
class Shop:
    merchant_id: str
    key: str


def seed(env: dict, customers: int, merchants: int) -> tuple[list[Person], list[Shop]]:
    from core.config import Settings
    from core.merchants import keys
    from core.merchants import merchants as merchants_core
    from core.runtime import Runtime
    from core.wallets import sandbox

    rt = Runtime(Settings.from_env(env))
    people, shops = [], []
    try:
        for i in range(customers):
            phone = f"+231{FIRST_PHONE + i}"
            with rt.uow() as uow:
                user, wallet = sandbox.make_buyer(uow, phone, amount=FUNDS)
                uow.commit()
            # The raw-SQL baseline needs only the ids and phone of each person.
            people.append(Person(user.id, wallet.id, phone, "", "", "", ""))
        for i in range(merchants):
            with rt.uow() as uow:
                m = merchants_core.create_merchant(uow, f"Bench Shop {i}")
                k = keys.mint_key(uow, rt.secret_key, m.id, livemode=False, scopes=list(keys.DEFAULT_SCOPES))
                uow.commit()
            shops.append(Shop(m.id, k.secret))
    finally:
        rt.dispose()
    return people, shops


class _JsonHttp(HttpClient):
    def request_json(self, method: str, path: str, body: bytes, headers: dict) -> tuple[int | None, dict | None]:
        import http.client

        try:
            self.conn.request(method, path, body=body, headers=headers)
            resp = self.conn.getresponse()
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
        except (OSError, http.client.HTTPException, ValueError):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            return None, None


def pay_once(http: _JsonHttp, shop: Shop, phone: str, amount: int) -> bool:
    """One payment through the API: create, then confirm from the buyer's wallet."""
    headers = {"Authorization": f"Bearer {shop.key}", "Content-Type": "application/json",
               "Accept": "application/json"}
    body = json.dumps({"amount": amount, "currency": "USD", "description": "bench"}).encode()
    status, data = http.request_json("POST", "/v1/payments", body, {**headers, "X-Idempotency-Key": uuid.uuid4().hex})
    if status != 201 or data is None:
        return False
    pid = data["data"]["id"]
    body = json.dumps({"payment_method": {"type": "soxara_wallet", "phone_number": phone}}).encode()
    status, data = http.request_json("POST", f"/v1/payments/{pid}/confirm", body,
                                     {**headers, "X-Idempotency-Key": uuid.uuid4().hex})
    return status == 200 and data is not None and data["data"]["status"] == "succeeded"


@dataclass
class Payments:
    """Wallet payments by random sandbox buyers to a random merchant (the first, with `hot`)."""

    name: str
    port: int
    people: list[Person]
    shops: list[Shop]
    hot: bool = False

    def client(self, index: int) -> _PaymentClient:
        return _PaymentClient(self)


class _PaymentClient:
    def __init__(self, load: Payments):
        self.load, self.rng, self.http = load, random.Random(), _JsonHttp(load.port)

    def once(self) -> bool:
        shop = self.load.shops[0] if self.load.hot else self.rng.choice(self.load.shops)
        return pay_once(self.http, shop, self.rng.choice(self.load.people).phone, self.rng.randint(100, 2000))

    def close(self) -> None:
        self.http.close()


def burst(port: int, people: list[Person], shop: Shop, n: int) -> dict:
    """n customers pay one merchant at the same moment: wall time, latencies, failures."""
    barrier, lock = threading.Barrier(n), threading.Lock()
    latencies: list[float] = []
    failures = [0]
    clients = [_JsonHttp(port) for _ in range(n)]

    def run(i: int) -> None:
        barrier.wait()
        t0 = time.perf_counter()
        ok = pay_once(clients[i], shop, people[i % len(people)].phone, 1000)
        with lock:
            latencies.append(time.perf_counter() - t0)
            failures[0] += not ok

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    for c in clients:
        c.close()
    lat = sorted(latencies)
    return {"payments": n, "failures": failures[0], "wall_s": wall, "per_second": n / wall,
            "p50_ms": percentile(lat, 0.5) * 1000, "p99_ms": percentile(lat, 0.99) * 1000}


def aftermath(env: dict, shop: Shop, burst_n: int) -> dict:
    import sqlalchemy as sa

    from core.config import Settings
    from core.runtime import Runtime
    from core.wallets import ledger

    rt = Runtime(Settings.from_env(env))
    try:
        with rt.uow() as uow:
            s = uow.session
            net = s.scalar(sa.text("SELECT coalesce(sum(amount - fee), 0) FROM payments "
                                   "WHERE merchant_id = :m AND status = 'succeeded'"), {"m": shop.merchant_id})
            balance = s.scalar(sa.text("SELECT balance FROM accounts WHERE owner_type = 'merchant' "
                                       "AND owner_id = :m AND currency = 'USD' AND livemode = false"),
                               {"m": shop.merchant_id})
            return {"payments_succeeded": s.scalar(sa.text("SELECT count(*) FROM payments WHERE status = 'succeeded'")),
                    "payments_not_succeeded": s.scalar(sa.text("SELECT count(*) FROM payments "
                                                               "WHERE status <> 'succeeded'")),
                    "hot_merchant_balance_is_sum_of_nets": balance == net,
                    "ledger_breaches": ledger.check(uow)}
    finally:
        rt.dispose()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="bench.payments", description=__doc__.split("\n\n")[0])
    p.add_argument("--customers", type=int, default=200, help="sandbox buyers who pay (200)")
    p.add_argument("--merchants", type=int, default=20, help="merchants paid, in the spread case (20)")
    p.add_argument("--burst", type=int, default=200, help="customers paying one merchant at once (200)")
    add_load_arguments(p, clients=8, duration=12.0, warmup=2.0, rounds=4)
    args = p.parse_args(argv)
    if not (1 <= args.clients <= 64 and 2 <= args.customers <= 1000 and 1 <= args.merchants <= 200
            and 1 <= args.burst <= 500 and 0 < args.duration <= 40 and 1 <= args.rounds <= 10):
        p.error("keep it bounded: 1-64 clients, 2-1000 customers, 1-200 merchants, a burst of 1-500, "
                "at most 40 s per scenario, 10 rounds")
    started = time.time()
    log_path = os.path.join(tempfile.gettempdir(), f"soxara-bench-payments-{os.getpid()}.log")
    with BenchDatabase() as url:
        env = bench_env(url, new_secret())
        people, shops = seed(env, max(args.customers, 2), args.merchants)
        server = Gunicorn("wsgi:app", env, workers=args.workers, threads=args.threads, log_path=log_path)
        try:
            server.wait_ready("/healthz")
            raw, spread, hot = run_interleaved([
                Transfers("raw SQL transfer (psycopg2)", "raw", url, people),
                Payments("API payment, spread merchants", server.port, people, shops),
                Payments("API payment, one hot merchant", server.port, people, shops, hot=True),
            ], **load_options(args))
            hot_burst = burst(server.port, people, shops[0], args.burst)
        finally:
            server.stop()
        after = aftermath(env, shops[0], args.burst)

    print(f"gunicorn gthread, {args.workers} workers x {args.threads} threads; {args.clients} concurrent clients "
          f"in {args.client_procs} processes; {len(people)} sandbox buyers, {len(shops)} merchants; "
          f"{args.warmup:g} s warm-up, {args.duration:g} s measured per scenario in {args.rounds} slices; "
          f"PostgreSQL; {os.cpu_count()} cores shared by clients, server and database")
    print("one API payment = POST /v1/payments + POST /v1/payments/{id}/confirm (settles at once)")
    print_table([raw, spread, hot], unit="op/s", baseline=[None, raw, raw], base_label="raw", width=34)
    print(f"API payments / raw-SQL transfers: {ratio(spread.per_second, raw.per_second):.2f} (spread), "
          f"{ratio(hot.per_second, raw.per_second):.2f} (one hot merchant); hot / spread "
          f"{ratio(hot.per_second, spread.per_second):.2f}")
    print(f"burst: {hot_burst['payments']} customers paying one merchant at once: all answered in "
          f"{hot_burst['wall_s']:.2f} s ({hot_burst['per_second']:.0f} payments/s), p50 {hot_burst['p50_ms']:.0f} ms, "
          f"p99 {hot_burst['p99_ms']:.0f} ms, {hot_burst['failures']} failed")
    print(f"after: {json.dumps(after)}; {time.time() - started:.0f} s in all")
    if args.json:
        print(json.dumps({"raw": vars(raw), "spread": vars(spread), "hot": vars(hot), "burst": hot_burst,
                          "after": after}, default=str))
    ok = (not after["ledger_breaches"] and after["hot_merchant_balance_is_sum_of_nets"]
          and hot_burst["failures"] == 0 and spread.errors == 0 and hot.errors == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
