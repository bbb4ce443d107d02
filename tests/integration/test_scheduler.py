"""The scheduler's tick: every sweep runs each tick, and a failing sweep is seen."""

from __future__ import annotations

import logging

import pytest

from core.jobs import TICK
from workers import scheduled

BROKEN = "workers.transfers.expire_due"


def test_a_failing_sweep_is_logged_and_fails_the_tick_after_every_other_sweep_ran(
        runtime, monkeypatch, caplog):
    """Guards tick swallowing a sweep's exception: it logged it and returned as if all
    was well, so neither a runner nor a test could see a sweep that always fails."""
    error = RuntimeError("the sweep broke")

    def broken(rt, now):
        raise error

    monkeypatch.setattr(BROKEN, broken)
    with caplog.at_level(logging.ERROR, logger="soxara.scheduler"), \
            pytest.raises(scheduled.SweepsFailed) as failed:
        scheduled.tick(runtime)
    assert failed.value.failed == [BROKEN]
    assert sorted(failed.value.done) == sorted(set(scheduled.SWEEPS) - {BROKEN}), "the others ran"
    assert all(isinstance(n, int) for n in failed.value.done.values())
    assert f"1 of {len(scheduled.SWEEPS)} sweeps failed" in str(failed.value)
    (logged,) = [r for r in caplog.records if r.name == "soxara.scheduler"]
    assert BROKEN in logged.getMessage() and logged.exc_info and logged.exc_info[1] is error


def test_a_tick_where_every_sweep_works_says_what_each_did(runtime):
    done = scheduled.tick(runtime)
    assert sorted(done) == sorted(scheduled.SWEEPS) and all(n == 0 for n in done.values())


def test_the_in_process_runner_goes_on_ticking_after_a_failed_tick(runtime, monkeypatch, caplog):
    """`soxara serve`'s runner logs the failed tick's job and ticks again a second later."""
    import threading

    from workers.queue import InProcessRunner

    calls, twice = [], threading.Event()

    def broken(rt, now):
        calls.append(now)
        if len(calls) == 2:
            twice.set()
        raise RuntimeError("the sweep broke")

    monkeypatch.setattr(BROKEN, broken)
    runner = InProcessRunner(runtime, "thread")
    with caplog.at_level(logging.ERROR, logger="soxara.jobs"):
        runner.start()
        try:
            assert twice.wait(10), "the runner ticked again after a failed tick"
        finally:
            runner.stop()
    assert any(TICK in r.getMessage() and r.exc_info
               and isinstance(r.exc_info[1], scheduled.SweepsFailed) for r in caplog.records)


def test_a_row_that_raises_is_logged_and_its_sweep_goes_on_with_the_next_rows(runtime, monkeypatch, caplog):
    """Guards one failing row stalling its sweep (the security walk): a transfer whose
    return raised stopped the claim-window sweep at that row, so every transfer due after
    it stayed held, every tick. Each row now has a unit of work of its own."""
    from datetime import timedelta

    from core.db import utcnow
    from core.tracing import install_logging
    from core.wallets import claims, ledger, transfers
    from tests.integration.test_transfers import _live_send_to_newbie

    install_logging()  # as every process does at start: log records carry the trace id
    past = utcnow() - timedelta(hours=runtime.settings.claim_window_hours, seconds=10)
    first = _live_send_to_newbie(runtime, 100, "USD", funds=1000, now=past)
    second = _live_send_to_newbie(runtime, 200, "USD", funds=1000, now=past + timedelta(seconds=1))
    real = claims._expire

    def broken_for_the_first(uow, rt, t, now):
        if t.id == first.id:
            raise RuntimeError("a row that cannot be returned")
        return real(uow, rt, t, now)

    monkeypatch.setattr(claims, "_expire", broken_for_the_first)
    traces = []
    for _ in range(2):
        caplog.clear()
        with caplog.at_level(logging.ERROR), pytest.raises(scheduled.SweepsFailed) as failed:
            scheduled.tick(runtime)
        with runtime.uow() as uow:
            assert uow.session.get(transfers.Transfer, second.id).status == "expired", "the next row was done"
            assert uow.session.get(transfers.Transfer, first.id).status == "pending_claim"
            assert ledger.check(uow) == []
        assert failed.value.failed == ["workers.transfers.expire_due"], "the tick still reports it"
        (row_line,) = [r for r in caplog.records if first.id in r.getMessage() and r.exc_info]
        assert row_line.trace_id.startswith("trc_") and row_line.trace_id in str(failed.value)
        traces.append(row_line.trace_id)
    assert traces[0] != traces[1], "each tick has a trace id of its own"


@pytest.mark.postgres
def test_a_sweep_stops_at_its_first_row_when_the_database_is_down(pg_runtime):
    """A row that raises is skipped, but a database that does not answer is no row's
    fault: every later row would wait out the same outage (up to the 5 s connect timeout
    each, 200 rows a sweep), so the sweep stops and the tick reports it."""
    from sqlalchemy import text

    from tests.conftest import database_down

    tried = []

    def handle(uow, row_id):
        tried.append(row_id)
        uow.session.execute(text("SELECT 1"))
        return 1

    with database_down(pg_runtime), pytest.raises(Exception) as stopped:
        scheduled.each_row(pg_runtime, "rows", ["r1", "r2", "r3"], handle)
    assert tried == ["r1"]
    assert not isinstance(stopped.value, scheduled.RowsFailed), "the outage itself, not a row's failure"
