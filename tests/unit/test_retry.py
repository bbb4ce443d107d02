"""The one retry and backoff helper (core/retry.py): when the next attempt is due."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from core.retry import Backoff

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def test_each_failed_attempt_waits_its_step_of_the_schedule_then_gives_up():
    b = Backoff((5, 30, 120))
    assert b.max_attempts == 4, "a first try and one retry per step"
    assert [b.next_attempt_at(n, NOW) for n in (1, 2, 3)] == [
        NOW + timedelta(seconds=5), NOW + timedelta(seconds=30), NOW + timedelta(seconds=120)]
    assert b.next_attempt_at(4, NOW) is None, "after the last step: given up"
    assert b.next_attempt_at(5, NOW) is None


def test_attempts_are_counted_from_one():
    with pytest.raises(ValueError):
        Backoff((5,)).next_attempt_at(0, NOW)


def test_jitter_spreads_a_wait_within_its_fraction_and_never_shortens_it_below():
    b = Backoff((100,), jitter=0.2)
    waits = {b.next_attempt_at(1, NOW, rng=random.Random(seed)) - NOW for seed in range(50)}
    assert len(waits) > 1, "retries of many rows do not all land in the same second"
    assert all(timedelta(seconds=80) <= w <= timedelta(seconds=120) for w in waits)


def test_exponential_schedules_double_up_to_a_cap_and_say_how_long_they_retry():
    b = Backoff.exponential(first=60, factor=2, cap=3600, span=timedelta(hours=24))
    delays = b.schedule
    assert delays[:4] == (60, 120, 240, 480) and max(delays) == 3600
    assert b.span >= timedelta(hours=24), "webhook deliveries: retried for at least 24 h"
    assert b.span - timedelta(seconds=delays[-1]) < timedelta(hours=24), "and not a step longer"


def test_a_schedule_has_positive_steps():
    with pytest.raises(ValueError):
        Backoff(())
    with pytest.raises(ValueError):
        Backoff((5, 0))
    with pytest.raises(ValueError):
        Backoff((5,), jitter=1.5)
