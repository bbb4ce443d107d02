"""When to try again: the one retry and backoff helper.

Whatever is retried later (a WhatsApp message today, webhook deliveries and biller calls
next) records its attempts on its row and asks a `Backoff` when the next one is due; the
row's due time is what the scheduler's sweep takes up (core/jobs.py). RQ's own retries of
a job use a schedule written here too (`JOB_RETRY`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Backoff:
    """Waits, in seconds, after the 1st, 2nd… failed attempt; after the last one the work
    is given up. `jitter` (0 to 1) spreads each wait by up to that fraction either way,
    so that rows that failed together (a provider's outage) are not all retried in the
    same second."""

    schedule: tuple[float, ...]
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if not self.schedule or any(s <= 0 for s in self.schedule):
            raise ValueError("a backoff schedule is one or more positive waits")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter is a fraction from 0 up to 1")

    @classmethod
    def exponential(cls, *, first: float, factor: float = 2, cap: float,
                    span: timedelta, jitter: float = 0.0) -> Backoff:
        """Waits of `first`, growing by `factor` up to `cap` each, until together they
        cover `span` (webhook deliveries: at least 24 h)."""
        waits: list[float] = []
        wait = first
        while sum(waits) < span.total_seconds():
            waits.append(min(wait, cap))
            wait *= factor
        return cls(tuple(waits), jitter)

    @property
    def max_attempts(self) -> int:
        """The first attempt and one per wait."""
        return len(self.schedule) + 1

    @property
    def span(self) -> timedelta:
        """How long after the first attempt the last one comes (without jitter)."""
        return timedelta(seconds=sum(self.schedule))

    def next_attempt_at(self, attempts: int, now: datetime, *,
                        rng: random.Random | None = None) -> datetime | None:
        """When to try again after `attempts` attempts (counted from 1), the last of
        which failed at `now`; None when that was the last one allowed."""
        if attempts < 1:
            raise ValueError("attempts are counted from 1: the one that just failed")
        if attempts > len(self.schedule):
            return None
        wait = self.schedule[attempts - 1]
        if self.jitter:
            wait *= 1 + (rng or random).uniform(-self.jitter, self.jitter)
        return now + timedelta(seconds=wait)


# RQ's retries of a job that raised (a job's own failures are mostly recorded on its row
# instead, for the sweeps): a few quick ones, then it waits for the sweep.
JOB_RETRY = Backoff((1, 5, 15, 60, 300))
