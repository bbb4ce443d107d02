"""Fixtures shared by every tier.

Backends: the suite runs on SQLite by default; with SOXARA_TEST_BACKEND=postgres every
runtime uses a fresh PostgreSQL database (per test session and xdist worker). Tests that
need PostgreSQL or Redis whatever the backend use `pg_runtime` / `redis_url`, which skip
with a reason where those are absent, except under CI=true, where absence fails.
"""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from typing import Any

import pytest

from core.config import Settings
from core.runtime import Runtime

CI = os.environ.get("CI", "").lower() == "true"
BACKEND = os.environ.get("SOXARA_TEST_BACKEND", "sqlite")
PG_ADMIN_URL = os.environ.get("SOXARA_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("SOXARA_TEST_REDIS", "redis://127.0.0.1:6379/15")


def _absent(what: str, why: str):
    if CI:
        pytest.fail(f"{what} is required under CI=true but is unavailable: {why}")
    pytest.skip(f"{what} unavailable ({why}); set it up to run this test")


def _pg_admin():
    import sqlalchemy as sa

    from core.db import driver_url

    eng = sa.create_engine(driver_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(sa.text("select 1"))
    return eng


def _fresh_pg_database() -> tuple[str, object]:
    import sqlalchemy as sa

    try:
        admin = _pg_admin()
    except Exception as e:  # noqa: BLE001
        _absent("PostgreSQL", str(e).splitlines()[0])
    name = f"soxara_t_{uuid.uuid4().hex[:12]}"
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    return url, (admin, name)


def _drop_pg_database(handle) -> None:
    import sqlalchemy as sa

    admin, name = handle
    with admin.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _migrate(url: str) -> None:
    from migrations.runner import upgrade

    upgrade(url)


def make_settings(url: str, **kw) -> Settings:
    base: dict[str, Any] = dict(env="test", database_url=url, inprocess_jobs="eager",
                public_url="http://soxara.test", secret_key="test-secret-key")
    base.update(kw)
    return Settings(**base)


# The eager job runners built for the running test: a job that fails in one fails the test.
_EAGER_RUNNERS: list = []


def build_runtime(settings: Settings) -> Runtime:
    from workers.runtime import build_runtime as build

    rt = build(settings)
    if getattr(rt.jobs, "mode", None) == "eager":
        _EAGER_RUNNERS.append(rt.jobs)
    return rt


def _failed_jobs() -> list:
    return [f for runner in _EAGER_RUNNERS for f in runner.failures]


@pytest.fixture(autouse=True)
def _a_failed_job_fails_the_test(request):
    """Jobs run eagerly, right after the commit that queued them, and a job that raises no
    longer raises out of that commit (the operation committed; in production a sweep redoes
    the job's work). The runner records the failure instead, and the test that caused it
    fails here, unless it asked for `job_failures`: it expects them and looks at them."""
    _EAGER_RUNNERS.clear()
    yield
    failed = _failed_jobs()
    _EAGER_RUNNERS.clear()
    if failed and "job_failures" not in request.fixturenames:
        pytest.fail("jobs failed during the test (ask for `job_failures` if that is expected): "
                    + "; ".join(f"{job}{args!r}: {e!r}" for job, args, e in failed), pytrace=False)


@pytest.fixture
def job_failures():
    """The jobs that failed so far in this test, as (job, args, exception): asking for it
    says the test expects some."""
    return _failed_jobs


@pytest.fixture(scope="session")
def pg_template_url():
    """A migrated PostgreSQL database for the whole session (this xdist worker)."""
    url, handle = _fresh_pg_database()
    _migrate(url)
    yield url
    _drop_pg_database(handle)


def _truncate_all(rt: Runtime) -> None:
    import sqlalchemy as sa

    from core.models import metadata

    with rt.engine.begin() as c:
        names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
        c.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture
def pg_runtime(request, pg_template_url):
    rt = build_runtime(make_settings(pg_template_url))
    _truncate_all(rt)
    yield rt
    rt.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("db") / "template.db"
    _migrate(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_runtime(tmp_path, sqlite_template):
    """A runtime on SQLite (the embedded default) whatever the suite's backend."""
    import shutil

    path = tmp_path / "soxara.db"
    shutil.copy(sqlite_template, path)
    rt = build_runtime(make_settings(f"sqlite:///{path}"))
    yield rt
    rt.dispose()


@pytest.fixture
def runtime(request):
    """A runtime on the suite's backend with an empty, migrated database."""
    return request.getfixturevalue("pg_runtime" if BACKEND == "postgres" else "sqlite_runtime")


@pytest.fixture
def settings(runtime) -> Settings:
    return runtime.settings


@pytest.fixture
def app(runtime):
    from api.app import create_app

    app = create_app(runtime=runtime)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def redis_url():
    url = _redis_url_for_this_process()
    try:
        import redis

        r = redis.Redis.from_url(url)
        r.ping()
    except Exception as e:  # noqa: BLE001
        _absent("Redis", str(e).splitlines()[0])
    r.flushdb()
    yield url
    r.flushdb()


def _redis_url_for_this_process() -> str:
    # Parallel test processes (xdist gw0, gw1…) each get a Redis database of their own:
    # one process's flushdb, or its worker taking jobs, must not touch another's.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:]
    base, _, db = REDIS_URL.rpartition("/")
    if not (worker.isdigit() and db.isdigit()):
        return REDIS_URL
    return f"{base}/{(int(db) - int(worker)) % 16}"


# --- helpers -----------------------------------------------------------------------------


class Api:
    """A small HTTP client for the /v1 API, the way a merchant's code would call it."""

    def __init__(self, client, token: str | None = None):
        self.client = client
        self.token = token

    def _headers(self, token, idem, extra):
        h = {}
        tok = self.token if token is None else token
        if tok:
            h["Authorization"] = f"Bearer {tok}"
        if idem is not False:
            h["X-Idempotency-Key"] = idem or uuid.uuid4().hex
        h.update(extra or {})
        return h

    def get(self, path, token=None, headers=None, **params):
        return self.client.get(path, headers=self._headers(token, False, headers), query_string=params)

    def post(self, path, body=None, token=None, idem=None, headers=None):
        return self.client.post(path, json=body if body is not None else {},
                                headers=self._headers(token, idem, headers))

    def patch(self, path, body=None, token=None, idem=None, headers=None):
        return self.client.patch(path, json=body or {}, headers=self._headers(token, idem, headers))

    def delete(self, path, token=None, idem=None, headers=None):
        return self.client.delete(path, headers=self._headers(token, idem, headers))


class RefusingJobs:
    """A job queue that cannot take jobs, as RQ's cannot while Redis refuses connections."""

    def __init__(self):
        self.refused: list[tuple[str, tuple]] = []

    def enqueue(self, job, *args, job_id=None):
        self.refused.append((job, args))
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


def closed_port() -> int:
    """A local port nothing listens on: connecting to it is refused, as to a stopped server."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def database_down(rt):
    """While inside, `rt`'s database refuses connections: its pooled ones are dropped and
    new ones go to a port nothing listens on. After, it is back."""
    from sqlalchemy import event

    port = closed_port()

    def refused(_dialect, _record, _cargs, cparams):
        cparams["port"] = port

    rt.engine.dispose()
    event.listen(rt.engine, "do_connect", refused)
    try:
        yield
    finally:
        event.remove(rt.engine, "do_connect", refused)
        rt.engine.dispose()


def raise_sqlstate(uow, condition: str) -> None:
    """Make PostgreSQL end `uow`'s transaction with the error `condition` (its name, e.g.
    deadlock_detected), just as it ends a deadlock's victim."""
    from sqlalchemy import text

    uow.session.execute(text(f"DO $$ BEGIN RAISE EXCEPTION 'as a test asked' USING ERRCODE = '{condition}'; END $$"))


def at_once(n: int, fn) -> list:
    """`fn(i)` for i in 0..n-1, each on its own thread, released together by a barrier:
    [their results], in the order they finished."""
    import threading

    barrier, results = threading.Barrier(n), []

    def run(i: int):
        barrier.wait()
        results.append(fn(i))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def create_merchant(runtime, name="Test Shop", scopes=None, live=False):
    from core.merchants import keys, merchants

    with runtime.uow() as uow:
        m = merchants.create_merchant(uow, name)
        k = keys.mint_key(uow, runtime.secret_key, m.id, livemode=live,
                          scopes=scopes if scopes is not None else list(keys.SCOPES))
        uow.commit()
    return m.id, k.secret


@pytest.fixture
def merchant(runtime):
    """(merchant_id, test key with every scope)."""
    return create_merchant(runtime)


@pytest.fixture
def api(client, merchant):
    return Api(client, merchant[1])


# --- users: log in through the API the way the app does ---------------------------------

TEST_PHONE = "+231881234567"


def otp_sent_to(runtime, phone: str) -> str:
    """The last login code WhatsApp'd to `phone`, read the way the sandbox phone sees it:
    by opening the sealed copy (the stored transcript only has it masked)."""
    import re

    from core.messaging import outbox

    with runtime.uow() as uow:
        items = outbox.outbox_for(uow, phone, 20, secret_key=runtime.secret_key)
    for item in reversed(items):
        m = re.search(r"\b(\d{6})\b", item.body)
        if m:
            return m.group(1)
    raise AssertionError(f"no code was sent to {phone}")


def login(client, runtime, phone: str = TEST_PHONE) -> dict:
    """Request and verify a code; the verify-otp `data` (tokens and user)."""
    api = Api(client)
    r = api.post("/v1/auth/request-otp", {"phone_number": phone})
    assert r.status_code == 202, r.get_json()
    r = api.post("/v1/auth/verify-otp", {"phone_number": phone, "code": otp_sent_to(runtime, phone)})
    assert r.status_code == 200, r.get_json()
    return r.get_json()["data"]


def user_token(client, runtime, phone: str = TEST_PHONE) -> str:
    """A logged-in user's access token."""
    return login(client, runtime, phone)["access_token"]


def signed_in(rt, user_id: str, pin: str = "5739") -> tuple[str, str]:
    """(access token, step-up token) for a user, made through core: a PIN, a session and
    a step-up, as the API's login and step-up would leave them."""
    from core.identity import pins, sessions

    with rt.uow() as uow:
        pins.set_pin(uow, user_id, pin)
        tokens = sessions.start(uow, rt, user_id)
        uow.commit()
    with rt.uow() as uow:  # step_up judges the PIN before this transaction begins
        step, _ = pins.step_up(uow, rt, user_id, pin, session_id=tokens.session_id)
        uow.commit()
    return tokens.access_token, step


def funded_people(rt, n: int, amount: int, first_phone: int = 231885000000) -> list[dict]:
    """`n` sandbox buyers with `amount` each, signed in: {"id", "phone", "token", "step"}
    each, their phones numbered on from `first_phone`."""
    from core.wallets import sandbox

    people = []
    for i in range(n):
        phone = f"+{first_phone + i}"
        with rt.uow() as uow:
            u, _ = sandbox.make_buyer(uow, phone, amount=amount)
            uow.commit()
        token, step = signed_in(rt, u.id)
        people.append({"id": u.id, "phone": phone, "token": token, "step": step})
    return people


def set_user_pin(client, token: str, pin: str = "4821") -> None:
    r = Api(client, token).post("/v1/auth/pin", {"pin": pin})
    assert r.status_code == 200, r.get_json()


def step_up_token(client, token: str, pin: str = "4821") -> str:
    r = Api(client, token).post("/v1/auth/step-up", {"pin": pin})
    assert r.status_code == 200, r.get_json()
    return r.get_json()["data"]["step_up_token"]


@pytest.fixture
def user_api(client, runtime):
    """An Api for a logged-in user (TEST_PHONE), with `.user_id` and `.phone`."""
    data = login(client, runtime)
    a = Api(client, data["access_token"])
    a.user_id, a.phone, a.refresh_token = data["user"]["id"], TEST_PHONE, data["refresh_token"]
    return a
