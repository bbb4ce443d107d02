"""Outbound WhatsApp messages: stored with their transaction, delivered once, in order."""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import timedelta

import pytest

from core.db import utcnow
from core.jobs import DELIVER_MESSAGE
from core.messaging import outbox, transports
from workers import messages as worker
from workers.jobs import DELIVER_MESSAGES, JOBS

PHONE = "+231881234567"


class Recorder:
    """A transport that records what it sent and can be told to fail."""

    keeps_delivered_copy = False

    def __init__(self, fail: int = 0, permanent: bool = False, fail_to: str | None = None):
        self.sent: list[tuple[str, str]] = []
        self.fail, self.permanent = fail, permanent
        self.fail_to = fail_to  # fail only messages to this phone
        self.calls = 0
        self._lock = threading.Lock()

    def send(self, to_phone: str, body: str) -> str:
        with self._lock:
            self.calls += 1
            if self.fail and self.fail_to in (None, to_phone):
                self.fail -= 1
                raise transports.TransportError("provider down", permanent=self.permanent)
            self.sent.append((to_phone, body))
            return f"SM{len(self.sent)}"


class NoJobs:
    def enqueue(self, job, *args, job_id=None):
        pass


@pytest.fixture
def recorder(request):
    """The transport of the test's runtime (pg_runtime's if it asks for that one)."""
    rec = Recorder()
    rt = request.getfixturevalue("pg_runtime" if "pg_runtime" in request.fixturenames else "runtime")
    rt.transport = rec
    return rec


def send(rt, body, *, sensitive=None, phone=PHONE):
    with rt.uow() as uow:
        m = outbox.send_whatsapp(uow, rt, phone, body, sensitive=sensitive)
        uow.commit()
    return m.id


def row(rt, mid) -> outbox.OutboundMessage:
    with rt.uow() as uow:
        m = outbox.get(uow, mid)
        assert m is not None
        uow.session.expunge(m)  # keep its loaded values past the rollback on exit
        return m


def test_sandbox_delivers_after_commit_and_keeps_the_secret_only_sealed(runtime):
    mid = send(runtime, "Your code is 314159.", sensitive=["314159"])
    m = row(runtime, mid)
    assert m.status == "sent" and m.provider_sid.startswith("SMsandbox_") and m.attempts == 1
    assert m.body == f"Your code is {outbox.MASK}." and b"314159" not in m.sealed_body
    with runtime.uow() as uow:
        (seen,) = outbox.outbox_for(uow, PHONE, 10, secret_key=runtime.secret_key)
        (transcript,) = outbox.outbox_for(uow, PHONE, 10)
    assert seen.body == "Your code is 314159." and transcript.body == m.body
    # The sandbox phone shows the real text for a while, then only the transcript is left.
    with runtime.uow() as uow:
        assert outbox.forget_delivered_copies(uow, utcnow()) == 0
        assert outbox.forget_delivered_copies(uow, utcnow() + outbox.REVEAL_WINDOW) == 1
        uow.commit()
    assert row(runtime, mid).sealed_body is None


def test_nothing_is_sent_for_a_rolled_back_transaction(runtime, recorder):
    with runtime.uow() as uow:
        outbox.send_whatsapp(uow, runtime, PHONE, "never")
    with runtime.uow() as uow:
        assert outbox.outbox_for(uow, PHONE) == []
    assert recorder.calls == 0


def test_a_real_transport_gets_the_real_text_and_the_sealed_copy_is_wiped(runtime, recorder):
    mid = send(runtime, "PIN reset code 271828", sensitive=["271828"])
    assert recorder.sent == [(PHONE, "PIN reset code 271828")]
    m = row(runtime, mid)
    assert m.status == "sent" and m.sealed_body is None and "271828" not in m.body


def test_outbox_is_per_phone_and_oldest_first(runtime):
    for i in range(3):
        send(runtime, f"hello {i}")
    send(runtime, "someone else", phone="+231771234567")
    with runtime.uow() as uow:
        assert [i.body for i in outbox.outbox_for(uow, PHONE)] == ["hello 0", "hello 1", "hello 2"]
        assert [i.body for i in outbox.outbox_for(uow, PHONE, 2)] == ["hello 1", "hello 2"]


def test_a_failed_message_is_retried_with_backoff_and_later_ones_wait_behind_it(runtime, recorder):
    recorder.fail = 1
    first = send(runtime, "first")
    second = send(runtime, "second")
    a, b = row(runtime, first), row(runtime, second)
    assert (a.status, a.attempts, a.error) == ("failed", 1, "provider down")
    assert b.status == "queued" and recorder.sent == [], "the second never overtakes the first"
    # Not before the backoff…
    assert worker.retry_due(runtime, a.created_at + timedelta(seconds=1)) == 0
    # …then both, in order.
    assert worker.retry_due(runtime, a.next_attempt_at + timedelta(seconds=1)) == 2
    assert [body for _, body in recorder.sent] == ["first", "second"]
    assert row(runtime, first).status == row(runtime, second).status == "sent"


def test_attempts_are_bounded(runtime, recorder):
    recorder.fail = 100
    mid = send(runtime, "doomed", sensitive=["doomed"])
    now = utcnow()
    for _ in range(outbox.MAX_ATTEMPTS + 2):
        now += timedelta(hours=1)
        worker.retry_due(runtime, now)
    m = row(runtime, mid)
    assert m.status == "failed" and m.attempts == outbox.MAX_ATTEMPTS
    assert m.next_attempt_at is None and m.sealed_body is None
    assert recorder.calls == outbox.MAX_ATTEMPTS


def test_retries_follow_the_one_backoff_helper(runtime, recorder, monkeypatch):
    """Message delivery waits and gives up as its core.retry.Backoff says (it had a
    BACKOFF list of its own)."""
    from core.retry import Backoff

    monkeypatch.setattr(outbox, "RETRY", Backoff((7,)))
    recorder.fail = 100
    mid = send(runtime, "twice at most")
    first = row(runtime, mid)
    assert first.attempts == 1
    assert timedelta(seconds=7) <= first.next_attempt_at - first.created_at < timedelta(seconds=8)
    assert worker.retry_due(runtime, first.next_attempt_at) == 0
    given_up = row(runtime, mid)
    assert (given_up.status, given_up.attempts, given_up.next_attempt_at) == ("failed", 2, None)


def test_a_permanent_failure_gives_up_at_once_and_frees_the_queue(runtime, recorder):
    recorder.fail, recorder.permanent = 1, True
    bad = send(runtime, "to nowhere")
    good = send(runtime, "next")
    assert row(runtime, bad).next_attempt_at is None and row(runtime, bad).attempts == 1
    assert row(runtime, good).status == "sent"


def test_a_lost_job_is_picked_up_by_the_sweep(runtime, recorder):
    runtime.jobs = NoJobs()
    mid = send(runtime, "lost")
    m = row(runtime, mid)
    assert m.status == "queued"
    assert worker.retry_due(runtime, m.created_at + timedelta(seconds=1)) == 0, "its job may still come"
    assert worker.retry_due(runtime, m.created_at + outbox.GRACE) == 1
    assert row(runtime, mid).status == "sent" and recorder.calls == 1


def test_a_failed_enqueue_after_commit_is_logged_and_the_sweep_delivers(runtime, recorder, caplog):
    from tests.conftest import RefusingJobs

    runtime.jobs = jobs = RefusingJobs()
    mid = send(runtime, "refused")  # committed: the enqueue's failure is not the caller's
    assert jobs.refused == [(DELIVER_MESSAGE, (mid,))]
    assert any("Connection refused" in r.getMessage() or "Connection refused" in (r.exc_text or "")
               for r in caplog.records if r.levelno >= logging.WARNING), "the lost enqueue is logged"
    m = row(runtime, mid)
    assert m.status == "queued" and recorder.calls == 0
    assert worker.retry_due(runtime, m.created_at + outbox.GRACE) == 1
    assert row(runtime, mid).status == "sent" and recorder.sent == [(PHONE, "refused")]


def test_a_job_that_fails_is_recorded_for_the_test_that_caused_it(runtime, job_failures, monkeypatch):
    # Jobs run eagerly in tests; commit() no longer raises what a job raises, so the
    # runner records it, and a test that did not ask for `job_failures` fails.
    def broken(message_id, runtime=None):
        raise RuntimeError("a bug in the delivery job")

    monkeypatch.setitem(JOBS, DELIVER_MESSAGE, broken)
    mid = send(runtime, "to a broken job")
    assert [(job, args, str(e)) for job, args, e in job_failures()] == [
        (DELIVER_MESSAGE, (mid,), "a bug in the delivery job")]
    assert row(runtime, mid).status == "queued", "left to the sweep"


def test_delivering_twice_sends_once(runtime, recorder):
    runtime.jobs = NoJobs()
    mid = send(runtime, "once")
    assert worker.deliver(mid, runtime=runtime) == 1
    assert worker.deliver(mid, runtime=runtime) == 0
    assert recorder.calls == 1


def test_a_job_for_a_later_message_sends_the_earlier_ones_first(runtime, recorder):
    runtime.jobs = NoJobs()
    ids = [send(runtime, f"m{i}") for i in range(3)]
    assert worker.deliver(ids[1], runtime=runtime) == 2
    assert [b for _, b in recorder.sent] == ["m0", "m1"]
    assert row(runtime, ids[2]).status == "queued"


OTHER = "+231771234567"
THIRD = "+231886543210"


def test_one_batch_delivers_many_phones_in_order_and_a_failing_phone_holds_back_only_its_own(runtime, recorder):
    runtime.jobs = NoJobs()
    ids = [send(runtime, f"{who} {i}", phone=phone)
           for i in range(3) for who, phone in (("a", PHONE), ("b", OTHER), ("c", THIRD))]
    later_a = send(runtime, "a later")  # not asked for, and newer than every id asked for
    recorder.fail, recorder.fail_to = 1, OTHER
    assert worker.deliver_many(ids, runtime=runtime) == 6
    # Each phone's messages in order; OTHER's first failed, and its later ones wait behind it.
    assert [b for to, b in recorder.sent if to == PHONE] == ["a 0", "a 1", "a 2"]
    assert [b for to, b in recorder.sent if to == THIRD] == ["c 0", "c 1", "c 2"]
    assert [b for to, b in recorder.sent if to == OTHER] == []
    assert row(runtime, ids[1]).status == "failed" and row(runtime, ids[4]).status == "queued"
    assert row(runtime, later_a).status == "queued"
    # Run again: nothing is sent twice, and OTHER still waits out its backoff.
    assert worker.deliver_many(ids, runtime=runtime) == 0
    assert len(recorder.sent) == 6


def test_deliver_up_to_takes_a_bounded_batch(runtime):
    with runtime.uow() as uow, pytest.raises(ValueError):
        outbox.deliver_up_to(uow, runtime.secret_key, transports.SandboxTransport(),
                                [f"msg_{i}" for i in range(outbox.DELIVER_BATCH + 1)])


def test_more_than_a_batch_is_delivered_in_several_transactions(runtime, recorder):
    runtime.jobs = NoJobs()
    n = outbox.DELIVER_BATCH + 5
    ids = [send(runtime, f"m{i}", phone=f"+23188{i:07d}") for i in range(n)]
    assert worker.deliver_many(ids, runtime=runtime) == n
    assert sorted(b for _, b in recorder.sent) == sorted(f"m{i}" for i in range(n))


def test_the_in_process_runner_runs_queued_deliveries_together_in_order():
    from workers.jobs import DELIVER_MESSAGES as b
    from workers.queue import coalesce

    d = DELIVER_MESSAGE
    assert coalesce([(d, ("m1",), "trc_1"), (d, ("m2",), "trc_2"), ("x.y", (1, 2), "trc_3"),
                     (d, ("m3",), "trc_4")]) == [
        (b, (["m1", "m2"],), "trc_1"), ("x.y", (1, 2), "trc_3"), (b, (["m3"],), "trc_4")]
    assert coalesce([]) == []


def test_the_runner_thread_delivers_a_burst_of_messages(runtime, recorder):
    import time

    from workers.queue import InProcessRunner

    runner = InProcessRunner(runtime, "thread")
    runtime.jobs = runner
    try:
        ids = [send(runtime, f"burst {i}", phone=(PHONE, OTHER)[i % 2]) for i in range(20)]
        deadline = time.monotonic() + 20
        while len(recorder.sent) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        runner.stop()
    assert [b for to, b in recorder.sent if to == PHONE] == [f"burst {i}" for i in range(0, 20, 2)]
    assert [b for to, b in recorder.sent if to == OTHER] == [f"burst {i}" for i in range(1, 20, 2)]
    assert all(row(runtime, m).status == "sent" for m in ids)


@pytest.mark.postgres
def test_concurrent_deliveries_of_one_phone_send_each_message_once(pg_runtime, recorder):
    pg_runtime.jobs = NoJobs()
    ids = [send(pg_runtime, f"m{i}") for i in range(5)]
    barrier = threading.Barrier(7)
    errors: list = []

    def together(fn):
        def run():
            barrier.wait()
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - a deadlock would surface here
                errors.append(e)
        return threading.Thread(target=run)

    threads = [together(lambda m=m: worker.deliver(m, runtime=pg_runtime)) for m in ids]
    threads += [together(lambda: worker.retry_due(pg_runtime, utcnow() + outbox.GRACE))
                for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [b for _, b in recorder.sent] == [f"m{i}" for i in range(5)]


@pytest.mark.redis
def test_a_message_is_delivered_by_an_rq_worker(runtime, redis_url):
    from rq import Queue, SimpleWorker

    from workers import context
    from workers.queue import RQQueue

    q = RQQueue(redis_url)
    # A queue of its own: test processes running in parallel share this Redis, and their
    # workers would take our job and run it against their own database.
    q.queue = Queue(f"test-messages-{uuid.uuid4().hex}", connection=q.redis)
    runtime.jobs = q
    context.set_process_runtime(runtime)  # what `soxara worker` builds from the environment
    try:
        mid = send(runtime, "code 161803", sensitive=["161803"])
        assert q.queue.count == 1 and row(runtime, mid).status == "queued"
        SimpleWorker([q.queue], connection=q.redis).work(burst=True)
        assert q.queue.failed_job_registry.count == 0
        assert row(runtime, mid).status == "sent"
    finally:
        context.set_process_runtime(None)


def test_the_runner_waits_briefly_for_more_deliveries_to_batch(runtime, monkeypatch):
    import time

    from workers import queue as jobs_queue

    calls: list[list[str]] = []
    monkeypatch.setitem(JOBS, DELIVER_MESSAGES, lambda ids, runtime=None: calls.append(list(ids)))
    monkeypatch.setattr(jobs_queue, "LINGER_SECONDS", 1.0)  # generous, so a slow machine still batches
    runner = jobs_queue.InProcessRunner(runtime, "thread")
    try:
        runner.enqueue(DELIVER_MESSAGE, "msg_first")
        time.sleep(0.1)  # the runner has the first by now, and is waiting for more
        runner.enqueue(DELIVER_MESSAGE, "msg_second")
        deadline = time.monotonic() + 10
        while not calls and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        runner.stop()
    assert calls[0] == ["msg_first", "msg_second"]
