"""The ledger's invariants, on the suite's backend."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from core.errors import InsufficientFunds, InvalidInput
from core.identity import users
from core.wallets import adjustments, ledger, sandbox, wallets


def _user_wallet(uow, phone, currency="USD", livemode=False):
    u = users.get_or_create(uow, phone)
    return wallets.wallet_for(uow, wallets.USER, u.id, currency, livemode)


def test_a_balanced_entry_moves_money_and_records_balances(runtime):
    with runtime.uow() as uow:
        _, a = sandbox.make_buyer(uow, "+231881000001")
        b = _user_wallet(uow, "+231881000002")
        ledger.post(uow, kind="transfer", obj_type="transfer", obj_id="tr_x", livemode=False,
                    currency="USD", legs=[(a.id, -2500), (b.id, 2500)])
        uow.commit()
        assert wallets.get(uow, a.id).balance == 97500
        assert wallets.get(uow, b.id).balance == 2500
        (p,) = ledger.transactions(uow, b.id, limit=10)
        assert (p.amount, p.balance_after, p.kind, p.obj_id) == (2500, 2500, "transfer", "tr_x")
        assert ledger.check(uow) == []


def test_unbalanced_or_float_entries_are_bugs(runtime):
    with runtime.uow() as uow:
        a = _user_wallet(uow, "+231881000001")
        b = _user_wallet(uow, "+231881000002")
        with pytest.raises(ValueError):
            ledger.post(uow, kind="x", obj_type="x", obj_id="x", livemode=False, currency="USD",
                        legs=[(a.id, -1), (b.id, 2)])
        with pytest.raises(TypeError):
            ledger.post(uow, kind="x", obj_type="x", obj_id="x", livemode=False, currency="USD",
                        legs=[(a.id, -1.0), (b.id, 1.0)])


def test_currency_and_mode_must_match_the_wallets(runtime):
    from sqlalchemy.exc import IntegrityError

    with runtime.uow() as uow:
        _, a = sandbox.make_buyer(uow, "+231881000001")
        lrd = _user_wallet(uow, "+231881000002", "LRD")
        live = _user_wallet(uow, "+231881000003", "USD", livemode=True)
        uow.commit()
    for other in (lrd, live):
        # A programming error, refused by the database where the entry is written (at once
        # on SQLite, with the commit on PostgreSQL): the whole entry, never half of it.
        with runtime.uow() as uow, pytest.raises(IntegrityError, match="balance_after"):
            ledger.post(uow, kind="x", obj_type="x", obj_id="x", livemode=False, currency="USD",
                        legs=[(a.id, -1), (other.id, 1)])
            uow.commit()
    with runtime.uow() as uow:
        assert [uow.session.get(wallets.Wallet, w.id).balance for w in (a, lrd, live)] == [100_000, 0, 0]
        assert ledger.check(uow) == []


def test_no_wallet_goes_below_zero(runtime):
    with runtime.uow() as uow:
        a = _user_wallet(uow, "+231881000001")
        b = _user_wallet(uow, "+231881000002")
        uow.commit()
    with runtime.uow() as uow, pytest.raises(InsufficientFunds):
        ledger.post(uow, kind="t", obj_type="t", obj_id="t", livemode=False, currency="USD",
                    legs=[(a.id, -1), (b.id, 1)])
        uow.commit()
    with runtime.uow() as uow:
        assert [uow.session.get(wallets.Wallet, w.id).balance for w in (a, b)] == [0, 0]
        assert ledger.check(uow) == []


def test_the_database_itself_refuses_an_overdraft(runtime):
    """Whoever writes the balance: the constraint, not only core.wallets.ledger, keeps it."""
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    with runtime.uow() as uow:
        a = _user_wallet(uow, "+231881000001")
        uow.commit()
    with runtime.uow() as uow, pytest.raises(IntegrityError, match="no_overdraft"):
        uow.session.execute(text("UPDATE accounts SET balance = -1 WHERE id = :id"), {"id": a.id})


def test_check_finds_tampering(runtime):
    with runtime.uow() as uow:
        _, a = sandbox.make_buyer(uow, "+231881000001")
        uow.commit()
    with runtime.engine.begin() as c:
        c.execute(sa.text("UPDATE accounts SET balance = balance + 1 WHERE id = :i"), {"i": a.id})
    with runtime.uow() as uow:
        breaches = ledger.check(uow)
    assert any("sum of its postings" in b for b in breaches)
    assert any("balances sum to" in b for b in breaches)


def test_check_finds_a_broken_balance_chain(runtime):
    with runtime.uow() as uow:
        _, a = sandbox.make_buyer(uow, "+231881000001")
        uow.commit()
    with runtime.engine.begin() as c:
        c.execute(sa.text("UPDATE postings SET balance_after = 5 WHERE account_id = :i"), {"i": a.id})
    with runtime.uow() as uow:
        breaches = ledger.check(uow)
    assert any("running balance" in b for b in breaches)


@contextmanager
def _without_the_overdraft_constraint(uow):
    """The accounts table as on a database that lost its CHECK (a restore without
    constraints, a migration gone wrong), for this unit of work only: PostgreSQL drops it
    in this transaction, which puts it back when it rolls back; SQLite, which cannot
    drop a constraint, ignores CHECKs on this connection meanwhile."""
    if uow.is_postgres:
        uow.session.execute(sa.text(f'ALTER TABLE accounts DROP CONSTRAINT "{ledger.NO_OVERDRAFT}"'))
        yield
        return
    uow.session.execute(sa.text("PRAGMA ignore_check_constraints = ON"))
    try:
        yield
    finally:
        uow.session.execute(sa.text("PRAGMA ignore_check_constraints = OFF"))


def test_check_finds_a_negative_wallet_where_the_constraint_is_gone(runtime):
    """check() stands behind the database's constraint: without it, a wallet that may not
    go negative and is (here claims held) is a breach; one that may (sandbox funding,
    negative by every test buyer's $1000) is not.

    Guards check()'s negative-wallet query. Before, this case set claims_held to -1 with
    an UPDATE that matched no row (the account did not exist) and asserted nothing about
    it: the query could have been deleted and the suite would pass."""
    with runtime.uow() as uow:
        sandbox.make_buyer(uow, "+231881000001")
        held = wallets.system_account(uow, "claims_held", "USD", False)
        uow.commit()
    with runtime.uow() as uow, _without_the_overdraft_constraint(uow):
        moved = uow.session.execute(sa.text("UPDATE accounts SET balance = -1 WHERE id = :i"), {"i": held.id})
        assert moved.rowcount == 1
        negative = [b for b in ledger.check(uow) if " is negative" in b]
    assert negative == [f"wallet {held.id} is negative: -1"]


def test_sandbox_buyer_is_topped_up_not_doubled(runtime):
    with runtime.uow() as uow:
        _, w = sandbox.make_buyer(uow, "+231881000001")
        uow.commit()
    with runtime.uow() as uow:
        _, w2 = sandbox.make_buyer(uow, "+231881000001")
        uow.commit()
        assert w2.id == w.id and w2.balance == 100000 and w2.livemode is False
        assert ledger.check(uow) == []


@pytest.mark.postgres
def test_sandbox_buyers_topped_up_at_once_hold_the_amount_once(pg_runtime):
    """`soxara sandbox buyer` (or `soxara demo`) run twice at once for one phone, as two
    scripts before their test runs would: the wallet is topped up to $1000 once, not once
    per run (each read the balance before the other's top-up committed)."""
    from tests.conftest import at_once

    for n in range(3):
        phone = f"+23188100{n:04d}"
        with pg_runtime.uow() as uow:  # a buyer who has spent $400 of their $1000
            _, w = sandbox.make_buyer(uow, phone, amount=600_00)
            uow.commit()

        def top_up(i, phone=phone):
            with pg_runtime.uow() as uow:
                sandbox.make_buyer(uow, phone)
                uow.commit()

        at_once(6, top_up)
        with pg_runtime.uow() as uow:
            assert wallets.get(uow, w.id).balance == sandbox.BUYER_FUNDS
            assert ledger.check(uow) == []


def test_adjustment_needs_a_reason_and_is_a_ledger_entry(runtime):
    with runtime.uow() as uow:
        w = _user_wallet(uow, "+231881000001", "LRD", livemode=True)
        uow.commit()
    with runtime.uow() as uow, pytest.raises(InvalidInput):
        adjustments.adjust(uow, wallet_id=w.id, amount=500, reason="")
    with runtime.uow() as uow:
        adjustments.adjust(uow, wallet_id=w.id, amount=500, reason="refund for failed MoMo reversal")
        uow.commit()
    with runtime.uow() as uow, pytest.raises(InsufficientFunds):  # refused by the commit at the latest
        adjustments.adjust(uow, wallet_id=w.id, amount=-501, reason="too much")
        uow.commit()
    with runtime.uow() as uow:
        adjustments.adjust(uow, wallet_id=w.id, amount=-200, reason="reversal")
        uow.commit()
        assert wallets.get(uow, w.id).balance == 300
        kinds = [p.kind for p in ledger.transactions(uow, w.id, limit=5)]
        assert kinds == ["adjustment", "adjustment"]
        assert ledger.check(uow) == []


def test_cli_ledger_check_and_adjust(runtime, capsys, monkeypatch):
    from api import cli

    with runtime.uow() as uow:
        w = _user_wallet(uow, "+231881000001")
        uow.commit()
    monkeypatch.setenv("SOXARA_DATABASE_URL", runtime.settings.database_url)
    monkeypatch.setenv("SOXARA_SECRET_KEY", runtime.settings.secret_key)
    assert cli.main(["ledger", "adjust", "--wallet", w.id, "--amount", "700", "--reason", "goodwill"]) == 0
    assert '"balance": 700' in capsys.readouterr().out
    assert cli.main(["ledger", "check"]) == 0
    with runtime.engine.begin() as c:
        c.execute(sa.text("UPDATE accounts SET balance = 1 WHERE id = :i"), {"i": w.id})
    assert cli.main(["ledger", "check"]) == 1
    assert "BREACH" in capsys.readouterr().out


def test_cli_adjust_answers_with_what_it_committed_even_if_the_database_goes_away(runtime, capsys, monkeypatch):
    """`soxara ledger adjust` moves money. Once its COMMIT has succeeded nothing may fail
    the command: an operator told it failed runs it again, and the money moves twice. Here
    the database stops answering right after that commit."""
    from api import cli
    from core.db import UnitOfWork

    with runtime.uow() as uow:
        w = _user_wallet(uow, "+231881000001")
        uow.commit()
    monkeypatch.setenv("SOXARA_DATABASE_URL", runtime.settings.database_url)
    monkeypatch.setenv("SOXARA_SECRET_KEY", runtime.settings.secret_key)
    committed = []
    real_commit = UnitOfWork.commit

    def commit_then_gone(self):
        real_commit(self)
        committed.append(True)

    def gone(*_args):
        if committed:
            raise sa.exc.OperationalError("the next statement", {}, Exception("server closed the connection"))

    monkeypatch.setattr(UnitOfWork, "commit", commit_then_gone)
    sa.event.listen(sa.engine.Engine, "before_cursor_execute", gone)
    try:
        status = cli.main(["ledger", "adjust", "--wallet", w.id, "--amount", "700", "--reason", "goodwill"])
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", gone)
        monkeypatch.undo()
    assert status == 0 and '"balance": 700' in capsys.readouterr().out
    with runtime.uow() as uow:
        assert wallets.get(uow, w.id).balance == 700
        assert [p.kind for p in ledger.transactions(uow, w.id, limit=5)] == ["adjustment"]


def test_a_failed_savepoint_drops_its_after_commit_work(runtime):
    ran = []
    with runtime.uow() as uow:
        uow.after_commit(lambda: ran.append("outer"))
        with pytest.raises(InsufficientFunds), uow.savepoint():
            uow.after_commit(lambda: ran.append("inner"))
            a = _user_wallet(uow, "+231881000001")
            b = _user_wallet(uow, "+231881000002")
            ledger.post(uow, kind="t", obj_type="t", obj_id="t", livemode=False, currency="USD",
                        legs=[(a.id, -1), (b.id, 1)])
        uow.commit()
    assert ran == ["outer"]
