"""Webhook jobs: the relay that fans committed events out to endpoints, the delivery job
that works one endpoint's deliveries, and the sweeps that do both when a job was lost
(core/webhooks/deliveries.py has the rules; docs/webhooks.md the whole story)."""

from __future__ import annotations

import logging
import time
from datetime import datetime

from core.db import utcnow
from core.jobs import DELIVER_WEBHOOKS, JobQueueUnavailable
from core.webhooks import deliveries
from core.webhooks.sender import Delivery
from workers.context import runtime_for

log = logging.getLogger("soxara.webhooks")

# A delivery job hands the endpoint back to the queue after this many attempts or
# seconds, so one endpoint's backlog (or one that hangs every time) cannot hold a worker
# past RQ's job timeout, nor keep it from other endpoints for long.
PER_JOB = 100
BUDGET = 60.0  # seconds


def relay(runtime=None, *, inline: bool = True) -> int:
    """Fan every committed, unrelayed event out to its endpoints: how many events. Then
    deliver: `inline`, this job itself delivers to the endpoints whose last attempts went
    through (one job per event instead of two: RQ's cost per job is most of a delivery's),
    and queues a job for each failing one, which may hang for the whole timeout. Not
    inline (the sweep, which must not wait on HTTP), it queues a job for each."""
    rt = runtime_for(runtime)
    total = 0
    while True:
        with rt.uow() as uow:
            done = deliveries.relay(uow)
            uow.commit()
        total += done.events
        for endpoint_id in done.endpoints:
            if inline and endpoint_id not in done.failing:
                deliver(endpoint_id, rt, requeue=False)
                continue
            try:
                rt.jobs.enqueue(DELIVER_WEBHOOKS, endpoint_id)
            except JobQueueUnavailable:
                pass  # the sweep prompts it once the queue is back
        if done.events < deliveries.RELAY_BATCH:
            return total


def deliver(endpoint_id: str, runtime=None, *, requeue: bool = True) -> int:
    """Make the endpoint's deliveries that may go now, in order, a claim of up to
    CLAIM_BATCH at a time: how many attempts were made. Safe to run twice at once: a
    claim leases its deliveries to one job."""
    rt = runtime_for(runtime)
    started, made = time.monotonic(), 0
    while made < PER_JOB and time.monotonic() - started < BUDGET:
        with rt.uow() as uow:
            claimed = deliveries.claim(uow, rt.secret_key, endpoint_id)
            uow.commit()
        if claimed is None:
            return made
        outcomes: list[tuple[deliveries.Leased, Delivery, datetime]] = []
        for item in claimed.items:
            now = utcnow()
            if outcomes and not claimed.may_start(now):
                break  # the rest is handed back: the lease must outlast every send
            if claimed.secrets:
                outcome = rt.webhooks.send(claimed.url, claimed.headers(item, now), item.body,
                                           deliveries.TIMEOUT, public_only=claimed.livemode)
            else:
                outcome = deliveries.UNSIGNABLE
            outcomes.append((item, outcome, now))
            if not outcome.ok:
                log.info("webhook %s to %s failed (attempt %d): %s", item.event_id, endpoint_id,
                         item.attempts + 1, outcome.error or f"HTTP {outcome.status}")
        with rt.uow() as uow:
            deliveries.record(uow, claimed, outcomes)
            uow.commit()
        made += len(outcomes)
    if requeue:
        try:  # more may be waiting: the endpoint goes to the back of the queue
            rt.jobs.enqueue(DELIVER_WEBHOOKS, endpoint_id)
        except JobQueueUnavailable:
            pass  # the sweep prompts it once the queue is back
    return made


def relay_due(runtime=None, now=None) -> int:
    """The sweep: relay what a lost relay job left."""
    rt = runtime_for(runtime)
    with rt.uow() as uow:
        waiting = deliveries.pending_relay(uow)
    return relay(rt, inline=False) if waiting else 0


def retry_due(runtime=None, now=None) -> int:
    """The sweep: prompt each endpoint that has a delivery due and not under way (a retry,
    a lost job, a lease a killed worker left). It only enqueues: a delivery may take 10 s,
    which the tick must not wait for."""
    rt, now = runtime_for(runtime), now or utcnow()
    with rt.uow() as uow:
        due = deliveries.due_endpoints(uow, now)
    for endpoint_id in due:
        try:
            rt.jobs.enqueue(DELIVER_WEBHOOKS, endpoint_id)
        except JobQueueUnavailable:
            return 0  # the next tick tries again
    return len(due)
