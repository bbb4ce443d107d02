"""Delayed work: job names in one place (core/jobs.py), their functions in workers/jobs.py,
and a job's log lines carrying the trace id of the request that caused it."""

from __future__ import annotations

import inspect
import logging
import uuid

import pytest

from core import jobs
from core.messaging import outbox
from tests.conftest import Api
from tests.integration.test_messaging import Recorder, row
from workers import context
from workers.jobs import JOBS, UnknownJob, perform

PHONE = "+231881234567"


def test_every_job_name_resolves_to_a_function_taking_what_core_gives_it():
    names = {v for k, v in vars(jobs).items() if k.isupper() and isinstance(v, str)}
    assert names == set(jobs.ARGUMENTS), "every name core defines has its arguments listed"
    for name, params in jobs.ARGUMENTS.items():
        fn = JOBS[name]
        # Bound by position, as both queues call it, plus the runtime the runner passes.
        inspect.signature(fn).bind(*[f"{p}_x" for p in params], runtime=None)
        assert list(inspect.signature(fn).parameters)[:len(params)] == list(params), name


def test_an_unknown_job_is_refused_by_name():
    with pytest.raises(UnknownJob, match="no job is called 'nobody.home'"):
        perform("nobody.home")


def test_core_cannot_enqueue_a_job_that_does_not_exist_or_with_the_wrong_arguments(runtime):
    with runtime.uow() as uow:
        with pytest.raises(ValueError):
            jobs.enqueue_after_commit(uow, runtime.jobs, "workers.messages.deliver", "msg_1")
        with pytest.raises(ValueError):
            jobs.enqueue_after_commit(uow, runtime.jobs, jobs.DELIVER_MESSAGE)


def _request_a_login_code(client) -> str:
    """A request that queues a WhatsApp message (the login code): its trace id."""
    r = Api(client).post("/v1/auth/request-otp", {"phone_number": PHONE})
    assert r.status_code == 202, r.get_json()
    return r.headers["X-Trace-Id"]


def _failed_delivery_lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "soxara.messages" and "not sent" in r.getMessage()]


def _the_code_message(runtime) -> str:
    with runtime.uow() as uow:
        (item,) = outbox.outbox_for(uow, PHONE)
    return item.id


def test_a_job_on_the_runner_thread_logs_with_the_trace_id_of_its_request(runtime, client, monkeypatch,
                                                                          caplog):
    """Guards the in-process runner's thread running jobs under no trace id ("-")."""
    from tests.processes import wait_for
    from workers.queue import InProcessRunner

    runtime.transport = Recorder(fail=1)
    runner = InProcessRunner(runtime, "thread")
    runtime.jobs = runner
    try:
        with caplog.at_level(logging.WARNING, logger="soxara.messages"):
            trace_id = _request_a_login_code(client)
            mid = _the_code_message(runtime)
            wait_for(lambda: row(runtime, mid).attempts == 1, "the runner's thread to try the message")
    finally:
        runner.stop()
    (line,) = _failed_delivery_lines(caplog)
    assert line.trace_id == trace_id != "-"


@pytest.mark.redis
def test_a_job_on_an_rq_worker_logs_with_the_trace_id_of_its_request(runtime, client, redis_url, monkeypatch,
                                                                      caplog):
    """The trace id travels through Redis with the job; the worker runs it under that id."""
    from rq import Queue, SimpleWorker

    from workers.queue import RQQueue

    runtime.transport = Recorder(fail=1)
    q = RQQueue(redis_url)
    q.queue = Queue(f"test-traces-{uuid.uuid4().hex}", connection=q.redis)  # ours alone
    runtime.jobs = q
    context.set_process_runtime(runtime)  # what `soxara worker` builds from the environment
    try:
        trace_id = _request_a_login_code(client)
        assert q.queue.count == 1
        with caplog.at_level(logging.WARNING, logger="soxara.messages"):
            SimpleWorker([q.queue], connection=q.redis).work(burst=True)
    finally:
        context.set_process_runtime(None)
    assert row(runtime, _the_code_message(runtime)).attempts == 1
    (line,) = _failed_delivery_lines(caplog)
    assert line.trace_id == trace_id != "-"


def test_the_runner_logs_a_failed_job_under_the_trace_id_it_carried(runtime, monkeypatch, caplog):
    from core.tracing import install_logging, traced
    from tests.processes import wait_for
    from workers.queue import InProcessRunner

    def broken(deposit_id, runtime=None):
        raise RuntimeError("a bug in the job")

    install_logging()
    monkeypatch.setitem(JOBS, jobs.ADVANCE_DEPOSIT, broken)
    runner = InProcessRunner(runtime, "thread")
    try:
        with caplog.at_level(logging.ERROR, logger="soxara.jobs"), traced("trc_from_the_request"):
            runner.enqueue(jobs.ADVANCE_DEPOSIT, "dep_1")
            wait_for(lambda: any("failed" in r.getMessage() for r in caplog.records), "the job to fail")
    finally:
        runner.stop()
    (line,) = [r for r in caplog.records if "failed" in r.getMessage()]
    assert line.trace_id == "trc_from_the_request"
