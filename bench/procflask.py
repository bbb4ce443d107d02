"""A second ceiling for bench/transfers.py: what the API sends PostgreSQL, as one call.

`bench_transfer(...)`, a PL/pgSQL function created in the bench database only (never a
migration), does what one API transfer asks of PostgreSQL (docs/bench-transfers.md): the
session and step-up checks, the idempotency key's lock and record, the parties, the
transfer, its journal entry, both balance moves with their postings, the two events, the
notice and the stored outcome. A bare Flask route makes the ids and calls it in one round
trip (autocommit: the call is the transaction). It measures how far a design that moved
the money path into the database could go under this gunicorn, before any of the Python
the API runs (hashing tokens, schemas, sealing). Not part of the product.
"""

from __future__ import annotations

import json
import os
import uuid

import psycopg2
from flask import Response, request

from bench.rawflask import bare_app, thread_connection
from core.db import utcnow
from core.ids import new_id

FUNCTION = """
CREATE OR REPLACE FUNCTION bench_transfer(
  p_session text, p_user text, p_step_up text, p_now timestamptz, p_lock bigint, p_scope text,
  p_key text, p_phone text, p_amount bigint, p_tid text, p_jid text, p_txn1 text, p_txn2 text,
  p_evt1 text, p_evt2 text, p_msg text, p_snapshot text, p_fingerprint text, p_sealed bytea)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  v_src text; v_balance bigint; v_label text; v_rcpt text; v_dst text; v_key text;
  v_a text; v_b text; v_da bigint; v_db bigint; v_ta text; v_tb text;
BEGIN
  PERFORM 1 FROM user_sessions WHERE id = p_session AND user_id = p_user AND revoked_at IS NULL;
  IF NOT FOUND THEN RAISE EXCEPTION 'UNAUTHENTICATED'; END IF;
  PERFORM 1 FROM step_up_tokens t
    JOIN user_sessions s ON s.id = t.session_id AND s.revoked_at IS NULL
    JOIN user_pins p ON p.user_id = t.user_id AND p.version = t.pin_version
    WHERE t.token_hash = p_step_up AND t.user_id = p_user AND t.session_id = p_session AND t.expires_at > p_now;
  IF NOT FOUND THEN RAISE EXCEPTION 'STEP_UP_REQUIRED'; END IF;
  PERFORM pg_advisory_xact_lock(p_lock);
  SELECT k.key INTO v_key FROM idempotency_keys k WHERE k.scope = p_scope AND k.key = p_key;
  IF FOUND THEN RAISE EXCEPTION 'IDEMPOTENCY_REPLAY'; END IF;
  SELECT s.id, s.balance, (SELECT phone_number FROM users WHERE id = p_user), r.id,
         (SELECT id FROM accounts WHERE owner_type = 'user' AND owner_id = r.id AND currency = 'USD'
          AND livemode = false)
    INTO v_src, v_balance, v_label, v_rcpt, v_dst
    FROM (SELECT 1 AS one) o
    LEFT JOIN accounts s ON s.owner_type = 'user' AND s.owner_id = p_user AND s.currency = 'USD'
      AND s.livemode = false
    LEFT JOIN users r ON r.phone_number = p_phone;
  IF v_balance < p_amount THEN RAISE EXCEPTION 'INSUFFICIENT_FUNDS'; END IF;
  INSERT INTO transfers (id, livemode, sender_type, sender_id, sender_wallet_id, to_phone_number,
    recipient_user_id, amount, currency, note, status, claim_code_hash, claim_expires_at, auto_claim_at,
    created_at, succeeded_at)
  VALUES (p_tid, false, 'user', p_user, v_src, p_phone, v_rcpt, p_amount, 'USD', NULL, 'succeeded', NULL,
    NULL, NULL, p_now, p_now);
  INSERT INTO journal_entries (id, kind, obj_type, obj_id, livemode, currency, memo, created_at)
  VALUES (p_jid, 'transfer', 'transfer', p_tid, false, 'USD', '', p_now);
  IF v_src < v_dst THEN v_a := v_src; v_da := -p_amount; v_b := v_dst; v_db := p_amount;
  ELSE v_a := v_dst; v_da := p_amount; v_b := v_src; v_db := -p_amount; END IF;
  UPDATE accounts SET balance = balance + v_da WHERE id = v_a AND currency = 'USD' AND livemode = false;
  INSERT INTO postings (id, entry_id, account_id, amount, balance_after, kind, obj_type, obj_id, created_at)
  VALUES (p_txn1, p_jid, v_a, v_da, (SELECT balance FROM accounts WHERE id = v_a), 'transfer', 'transfer',
    p_tid, p_now);
  UPDATE accounts SET balance = balance + v_db WHERE id = v_b AND currency = 'USD' AND livemode = false;
  INSERT INTO postings (id, entry_id, account_id, amount, balance_after, kind, obj_type, obj_id, created_at)
  VALUES (p_txn2, p_jid, v_b, v_db, (SELECT balance FROM accounts WHERE id = v_b), 'transfer', 'transfer',
    p_tid, p_now);
  INSERT INTO events (id, type, livemode, merchant_id, object_type, object_id, data, created_at, relay_pending)
  VALUES (p_evt1, 'transfer.created', false, NULL, 'transfer', p_tid, p_snapshot, p_now, false),
         (p_evt2, 'transfer.succeeded', false, NULL, 'transfer', p_tid, p_snapshot, p_now, false);
  INSERT INTO outbound_messages (id, to_phone, channel, body, sealed_body, status, attempts, next_attempt_at,
    created_at)
  VALUES (p_msg, p_phone, 'bench', 'You received money from ' || v_label || '. Ref ' || p_tid, NULL, 'sent', 0,
    NULL, p_now);
  INSERT INTO idempotency_keys (scope, key, fingerprint, attempt, status, response_status, response_sealed,
    created_at, expires_at)
  VALUES (p_scope, p_key, p_fingerprint, '', 'done', 201, p_sealed, p_now, p_now + interval '24 hours');
  RETURN p_tid;
END $$;
"""

CALL = ("SELECT bench_transfer(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)")

app = bare_app("procflask")


def create_function(url: str) -> None:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(FUNCTION)
    conn.close()


@app.post("/transfers")
def transfer():
    b = json.loads(request.get_data())
    now, tid = utcnow(), new_id("tr")
    snapshot = json.dumps({"id": tid, "object": "transfer", "amount": b["amount"], "pad": "x" * 300})
    with thread_connection(autocommit=True).cursor() as cur:
        cur.execute(CALL, (b["session"], b["from_user"], b["step_up_hash"], now, uuid.uuid4().int >> 65,
                           "usr:" + b["from_user"], uuid.uuid4().hex, b["to_phone"], int(b["amount"]), tid,
                           new_id("jrn"), new_id("txn"), new_id("txn"), new_id("evt"), new_id("evt"),
                           new_id("msg"), snapshot, uuid.uuid4().hex * 2, os.urandom(600)))
        cur.fetchone()
    body = json.dumps({"success": True, "data": {"id": tid, "object": "transfer"}}, separators=(",", ":"))
    return Response(body, status=201, mimetype="application/json")
