"""The ceiling for bench/transfers.py: the raw-SQL transfer behind one bare Flask route.

No auth, no idempotency, no events, no notice: the JSON body names both wallets, the
route runs the very transaction of bench/transfers.py's raw SQL client (its `move`) on a
psycopg2 connection of its own thread, and answers a small JSON body. Served by the same
gunicorn settings as the product, it is the most any Flask route under gunicorn can make
of the raw-SQL rate on this machine: the share that HTTP, Flask and a Python server take
before Soxara does anything. Not part of the product.
"""

from __future__ import annotations

import json
import os
import threading

import psycopg2
from flask import Flask, Response, request

from bench.transfers import Person, _RawClient

_local = threading.local()


def bare_app(name: str) -> Flask:
    """A bare Flask app with the /healthz the bench waits for."""
    app = Flask(name)
    app.add_url_rule("/healthz", view_func=lambda: Response(b'{"ok":true}', mimetype="application/json"))
    return app


def thread_connection(*, autocommit: bool = False):
    """This thread's own psycopg2 connection to the bench database."""
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = _local.conn = psycopg2.connect(os.environ["SOXARA_DATABASE_URL"])
        conn.autocommit = autocommit
    return conn


app = bare_app("rawflask")


@app.post("/transfers")
def transfer():
    b = json.loads(request.get_data())
    src = Person(b["from_user"], b["from_wallet"], "", "", "", "", "")
    dst = Person(b["to_user"], b["to_wallet"], b["to_phone"], "", "", "", "")
    conn = thread_connection()
    try:
        with conn.cursor() as cur:
            tid, _ = _RawClient.move(cur, src, dst, int(b["amount"]))
        if tid is None:
            conn.rollback()
            return Response(b'{"success":false}', status=422, mimetype="application/json")
        conn.commit()
    except Exception:
        conn.rollback()
        raise
    body = json.dumps({"success": True, "data": {"id": tid, "object": "transfer"}}, separators=(",", ":"))
    return Response(body, status=201, mimetype="application/json")
