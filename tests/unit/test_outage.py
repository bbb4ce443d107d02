"""A dependency's outage is logged when it starts, now and then while it lasts, and when
it ends: not once per failed call."""

from __future__ import annotations

import logging

from workers.queue import Outage


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_outage_is_logged_once_per_change_and_reminded_while_it_lasts(caplog):
    clock = Clock()
    outage = Outage("the job queue (Redis)", logging.getLogger("test.outage"), retry_after=1.0, clock=clock)
    caplog.set_level(logging.INFO, logger="test.outage")

    outage.recovered()  # up, and staying up: nothing to say
    for _ in range(50):
        outage.failed(ConnectionError("refused"))
        clock.now += 0.1
    assert [r.getMessage() for r in caplog.records] == ["the job queue (Redis) is unreachable: refused"]
    clock.now += Outage.REMIND_SECONDS
    outage.failed(ConnectionError("refused"))
    outage.failed(ConnectionError("refused"))
    assert len(caplog.records) == 2 and "still unreachable, for 65 s now (51 calls missed)" in caplog.records[1].getMessage()

    outage.recovered()
    outage.recovered()
    assert [r.levelno for r in caplog.records] == [logging.ERROR, logging.ERROR, logging.WARNING]
    assert caplog.records[2].getMessage() == "the job queue (Redis) is reachable again, after 65 s (52 calls missed)"
    assert not outage.down


def test_after_a_failure_calls_are_not_tried_for_a_moment():
    clock = Clock()
    outage = Outage("Redis", logging.getLogger("test.outage"), retry_after=1.0, clock=clock)
    assert outage.may_try()
    outage.failed(ConnectionError("refused"))
    assert not outage.may_try() and outage.missed == 2
    clock.now += 1.0
    assert outage.may_try()
    outage.recovered()
    assert outage.may_try() and outage.missed == 0
