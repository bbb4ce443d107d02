"""Hot statements (core/db.py): deferred writes keep program order, roll back with their
transaction or savepoint, never leak into the next transaction, and fail loudly. On
SQLite each runs at once; on PostgreSQL (SOXARA_TEST_BACKEND=postgres) they are batched."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from core.db import Statement, UTCDateTime, utcnow
from core.events.events import Event
from core.wallets import wallets

_EVENT = Statement(
    "INSERT INTO events (id, type, livemode, merchant_id, object_type, object_id, data, created_at) "
    "VALUES (:id, 'transfer.created', FALSE, NULL, 'transfer', :object_id, '{}', :created_at)",
    created_at=UTCDateTime())
_COUNT = Statement("SELECT count(*) FROM events WHERE object_id = :object_id")
_BACKEND_PID = Statement("SELECT pg_backend_pid()")


def _write(uow, event_id: str, object_id: str = "tr_hot") -> None:
    uow.defer(_EVENT, {"id": event_id, "object_id": object_id, "created_at": utcnow()})


def _count(runtime, object_id: str = "tr_hot") -> int:
    with runtime.uow() as uow:
        return uow.run(_COUNT, {"object_id": object_id})[0][0]


def test_deferred_writes_are_seen_by_later_reads_hot_or_orm(runtime):
    with runtime.uow() as uow:
        _write(uow, "evt_1")
        assert uow.run(_COUNT, {"object_id": "tr_hot"})[0][0] == 1
        _write(uow, "evt_2")
        assert uow.session.scalar(select(func.count()).select_from(Event)
                                  .where(Event.object_id == "tr_hot")) == 2
        uow.commit()
    assert _count(runtime) == 2


def test_a_rollback_drops_them_and_the_next_transaction_does_not_carry_them(runtime):
    with runtime.uow() as uow:
        _write(uow, "evt_1")
    with runtime.uow() as uow:  # the same pooled connection, most likely
        _write(uow, "evt_2", "tr_other")
        uow.commit()
    assert _count(runtime) == 0 and _count(runtime, "tr_other") == 1


def _orm_user(uow, phone: str) -> None:
    from core.identity import users

    users.get_or_create(uow, phone)  # an ORM write


def _users(runtime, *phones) -> int:
    from core.identity.users import User

    with runtime.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(User).where(User.phone_number.in_(phones)))


def test_hot_statements_then_the_orm_share_one_transaction(runtime):
    """A unit of work that began with hot statements (on a plain connection) and then
    asked for its ORM session: both commit together, or roll back together."""
    with runtime.uow() as uow:
        _write(uow, "evt_rolled_back")
        _orm_user(uow, "+231886100001")
        uow.rollback()
        _write(uow, "evt_kept")
        _orm_user(uow, "+231886100002")
        uow.commit()
    assert _count(runtime) == 1 and _users(runtime, "+231886100001") == 0
    assert _users(runtime, "+231886100002") == 1
    with runtime.uow() as uow:  # left without commit: neither
        _write(uow, "evt_dropped")
        _orm_user(uow, "+231886100003")
    assert _count(runtime) == 1 and _users(runtime, "+231886100003") == 0


def test_a_unit_of_work_goes_on_after_a_commit(runtime):
    """Committed midway (as the idempotency claim does on SQLite), then more of both."""
    with runtime.uow() as uow:
        _write(uow, "evt_first")
        uow.commit()
        _orm_user(uow, "+231886100004")
        _write(uow, "evt_second")
        uow.commit()
        _write(uow, "evt_third")  # never committed
    assert _count(runtime) == 2 and _users(runtime, "+231886100004") == 1


def test_a_savepoint_keeps_what_came_before_it_and_drops_what_it_rolled_back(runtime):
    with runtime.uow() as uow:
        _write(uow, "evt_before")
        with pytest.raises(RuntimeError), uow.savepoint():
            _write(uow, "evt_inside")
            raise RuntimeError("refused")
        _write(uow, "evt_after")
        uow.commit()
    with runtime.uow() as uow:
        ids = set(uow.session.scalars(select(Event.id).where(Event.object_id == "tr_hot")))
    assert ids == {"evt_before", "evt_after"}


def test_a_failing_deferred_write_fails_the_commit_and_writes_nothing(runtime):
    with runtime.uow() as uow:
        _write(uow, "evt_dup")
        uow.commit()
    with runtime.uow() as uow:
        with pytest.raises(IntegrityError):
            _write(uow, "evt_new")
            _write(uow, "evt_dup")  # SQLite raises here, PostgreSQL at the commit
            uow.commit()
    assert _count(runtime) == 1


def test_a_refused_transfer_in_a_savepoint_leaves_no_trace(runtime):
    """The bot sends inside a savepoint: a refusal must take the transfer row, its entry
    and its notice with it, while the rest of the transaction still commits."""
    from core.errors import InsufficientFunds
    from core.messaging.outbox import OutboundMessage
    from core.wallets import sandbox, transfers

    with runtime.uow() as uow:
        alice, _ = sandbox.make_buyer(uow, "+231886000001", amount=500)
        uow.commit()
    with runtime.uow() as uow:
        with pytest.raises(InsufficientFunds), uow.savepoint():
            transfers.send(uow, runtime, sender=transfers.Party("user", alice.id, False), amount=501,
                           currency="USD", to_phone="+231886000002")
        _write(uow, "evt_kept")
        uow.commit()
    with runtime.uow() as uow:
        s = uow.session
        assert s.scalar(select(func.count()).select_from(transfers.Transfer)) == 0
        assert s.scalar(select(func.count()).select_from(OutboundMessage)
                        .where(OutboundMessage.to_phone == "+231886000002")) == 0
    assert _count(runtime) == 1


def test_an_overdraft_refused_as_its_savepoint_ends_leaves_no_trace(runtime):
    """The ledger's moves are deferred: on PostgreSQL the constraint refuses an overdraft
    only when the batch is sent, here as the savepoint is released. The savepoint must
    still roll back alone, entry, postings and all, and the transaction go on."""
    from core.errors import InsufficientFunds
    from core.identity import users
    from core.wallets import ledger, sandbox

    with runtime.uow() as uow:
        _, a = sandbox.make_buyer(uow, "+231886000001", amount=500)
        b = wallets.wallet_for(uow, wallets.USER, users.get_or_create(uow, "+231886000002").id, "USD", False)
        uow.commit()
    with runtime.uow() as uow:
        _write(uow, "evt_before")
        with pytest.raises(InsufficientFunds), uow.savepoint():
            ledger.post(uow, kind="transfer", obj_type="transfer", obj_id="tr_x", livemode=False,
                        currency="USD", legs=[(a.id, -501), (b.id, 501)])
            _write(uow, "evt_inside")
        _write(uow, "evt_after")
        uow.commit()
    assert _count(runtime) == 2
    with runtime.uow() as uow:
        assert [uow.session.get(wallets.Wallet, w.id).balance for w in (a, b)] == [500, 0]
        assert uow.session.scalar(select(func.count()).select_from(ledger.JournalEntry)
                                  .where(ledger.JournalEntry.obj_id == "tr_x")) == 0
        assert ledger.check(uow) == []


def _kill_pooled_connections(runtime) -> None:
    """Terminate, from outside, the server processes behind the pool's idle connections."""
    from sqlalchemy import create_engine, text

    pids = []
    for _ in range(3):  # check a few out at once, so every idle one is among them
        with runtime.uow() as uow:
            pids.append(uow.session.scalar(text("SELECT pg_backend_pid()")))
    with create_engine(runtime.engine.url, isolation_level="AUTOCOMMIT").connect() as admin:
        for pid in set(pids):
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


@pytest.mark.postgres
def test_an_idle_pooled_connection_that_died_is_replaced_before_use(pg_runtime, monkeypatch):
    from core import db

    _kill_pooled_connections(pg_runtime)
    monkeypatch.setattr(db, "PING_IDLE_AFTER", 0.0)  # every pooled connection counts as idle
    with pg_runtime.uow() as uow:
        _write(uow, "evt_after_restart")
        uow.commit()
    assert _count(pg_runtime) == 1


@pytest.mark.postgres
def test_a_busy_pooled_connection_that_died_fails_once_then_the_pool_reconnects(pg_runtime, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from core import db

    monkeypatch.setattr(db, "PING_IDLE_AFTER", 3600.0)  # nothing is pinged
    _kill_pooled_connections(pg_runtime)
    with pytest.raises(OperationalError), pg_runtime.uow() as uow:
        _write(uow, "evt_lost")
        uow.commit()
    for _ in range(3):  # whichever pooled connection comes next works
        with pg_runtime.uow() as uow:
            _write(uow, f"evt_{uow.session.scalar(select(func.random()))}")
            uow.commit()
    assert _count(pg_runtime) == 3


@pytest.mark.postgres
def test_a_forked_process_connects_anew_and_leaves_the_parents_connections_alone(pg_runtime):
    """An RQ work horse or a prefork server is forked with the parent's pool: using an
    inherited connection would share one server session between two processes."""
    import os

    from sqlalchemy import text

    def backend_pid() -> int:
        with pg_runtime.uow() as uow:
            return uow.run(_BACKEND_PID)[0][0]

    parent_pid = backend_pid()  # pooled now, and its statement prepared
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child: report the server process it talks to, then leave at once
        try:
            os.write(write, str(backend_pid()).encode())
        finally:
            os._exit(0)
    os.close(write)
    _, status = os.waitpid(child, 0)
    child_pid = int(os.read(read, 64) or b"0")
    os.close(read)
    assert status == 0 and child_pid not in (0, parent_pid)
    assert backend_pid() == parent_pid, "the parent's connection is still its own, and alive"
    with pg_runtime.uow() as uow:  # and its prepared statements still work
        _write(uow, "evt_after_fork")
        uow.commit()
    assert _count(pg_runtime) == 1
    import time

    deadline = time.monotonic() + 10  # the child's own connection went with it
    while time.monotonic() < deadline:
        with pg_runtime.engine.connect() as c:
            if not c.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": child_pid}):
                break
        time.sleep(0.05)
    else:
        raise AssertionError("the child's server process outlived it")


def test_what_a_hot_write_returns_is_plain_data(runtime):
    """send_whatsapp, ledger.post and transfers.send write with hot statements, so the
    session never holds what they wrote. What they return is therefore a frozen value,
    not an ORM object: nobody can change it believing the change will be saved. It says
    what the row says."""
    import dataclasses

    from core.db import Base
    from core.identity import users
    from core.messaging import outbox
    from core.wallets import ledger, sandbox, transfers, wallets
    from core.wallets.transfers import Transfer

    with runtime.uow() as uow:
        alice, a = sandbox.make_buyer(uow, "+231881000001")
        bob = users.get_or_create(uow, "+231881000002")
        b = wallets.wallet_for(uow, wallets.USER, bob.id, "USD", False)
        msg = outbox.send_whatsapp(uow, runtime, bob.phone_number, "code 123456", sensitive=["123456"])
        entry = ledger.post(uow, kind="transfer", obj_type="transfer", obj_id="tr_x", livemode=False,
                            currency="USD", legs=[(a.id, -100), (b.id, 100)], memo="hot")
        sent = transfers.send(uow, runtime, sender=transfers.Party("user", alice.id, False), amount=250,
                              currency="USD", to_phone=bob.phone_number, note="lunch")
        # Read back in the same transaction: the writes go with these reads, and the
        # message is not delivered yet (that happens after the commit).
        rows = [(msg, outbox.get(uow, msg.id)), (entry, uow.session.get(ledger.JournalEntry, entry.id)),
                (sent, uow.session.get(Transfer, sent.id))]
        for value, row in rows:
            assert dataclasses.is_dataclass(value) and not isinstance(value, Base), type(value)
            with pytest.raises(dataclasses.FrozenInstanceError):
                value.id = "changed"  # type: ignore[misc]
            assert {f.name: getattr(value, f.name) for f in dataclasses.fields(value)} == \
                {f.name: getattr(row, f.name) for f in dataclasses.fields(value)}
        uow.commit()
    assert (sent.status, sent.recipient_user_id, sent.note) == ("succeeded", bob.id, "lunch")
    assert msg.body == f"code {outbox.MASK}" and entry.memo == "hot"
