"""The scheduler's tick: every sweep runs each tick, and a failing sweep is seen."""

from __future__ import annotations

import logging

import pytest

from core.jobs import TICK
from workers import scheduled

BROKEN = "workers.scheduled.expire_transfers"


def test_a_failing_sweep_is_logged_and_fails_the_tick_after_every_other_sweep_ran(
        runtime, monkeypatch, caplog):
    """Guards tick swallowing a sweep's exception: it logged it and returned as if all
    was well, so neither a runner nor a test could see a sweep that always fails."""
    error = RuntimeError("the sweep broke")

    def broken(rt, now):
        raise error

    monkeypatch.setattr(scheduled, BROKEN.rpartition(".")[2], broken)
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

    monkeypatch.setattr(scheduled, BROKEN.rpartition(".")[2], broken)
    runner = InProcessRunner(runtime, "thread")
    with caplog.at_level(logging.ERROR, logger="soxara.jobs"):
        runner.start()
        try:
            assert twice.wait(10), "the runner ticked again after a failed tick"
        finally:
            runner.stop()
    assert any(TICK in r.getMessage() and r.exc_info
               and isinstance(r.exc_info[1], scheduled.SweepsFailed) for r in caplog.records)
