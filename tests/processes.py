"""Real processes for tests: a Redis server of the test's own, and `soxara worker`.

    redis = RedisServer(tmp_path)         # a free port; nothing kept on disk, like the machine's
    with redis, WorkerProcess(runtime.settings, redis.url, tmp_path) as worker:
        ...
        redis.kill(); redis.start()       # back on the same port, empty
        wait_for(lambda: ..., "what is awaited")

A WorkerProcess runs `soxara worker` (api.cli) against the test's database. With
`record_sends`, its WhatsApp transport is swapped for one that appends each message it
sends to a file (`worker.sent()`), so that a test can count what left, and how often.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def wait_for(condition, what: str, timeout: float = 30.0, every: float = 0.05):
    """Poll `condition()` until it returns something true (returned), or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f} s for {what}")
        time.sleep(every)


def free_port() -> int:
    from tests.conftest import closed_port

    return closed_port()


class RedisServer:
    """`redis-server` on a free local port, as a child process; `kill` and `start` again to
    have it come back on the same port, empty."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        from redis import Redis

        if not Path(REDIS_SERVER).exists():
            from tests.conftest import _absent

            _absent("redis-server", f"{REDIS_SERVER} not found")
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = Redis(port=self.port, socket_connect_timeout=0.2)

        def answers():
            assert self.proc is not None and self.proc.poll() is None, "redis-server exited"
            try:
                return client.ping()
            except Exception:  # noqa: BLE001 - not listening yet
                return False

        wait_for(answers, f"redis-server on port {self.port}", timeout=15)
        return self

    def kill(self) -> None:
        """Gone at once, as a crash: no shutdown, nothing saved."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.kill()


_RECORDING_WORKER = """
import json, os, sys
from workers import runtime

class Recording:
    keeps_delivered_copy = False
    def __init__(self, path):
        self.path = path
    def send(self, to_phone, body):
        line = json.dumps({"to": to_phone, "body": body}) + "\\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
        return "SMrecorded"

recording = Recording(os.environ["SOXARA_TEST_SENT_LOG"])
runtime.transport_for = lambda settings: recording
from api.cli import main
sys.exit(main(["worker"]))
"""


class WorkerProcess:
    """`soxara worker` in a process of its own, on the test's database and `redis_url`."""

    def __init__(self, settings, redis_url: str, workdir: Path, *, record_sends: bool = False):
        self.log_path = workdir / f"worker-{free_port()}.log"
        self.sent_path = workdir / "sent.jsonl" if record_sends else None
        env = {k: v for k, v in os.environ.items() if not k.startswith("SOXARA_")}
        env.update({
            "SOXARA_ENV": settings.env, "SOXARA_DATABASE_URL": settings.database_url,
            "SOXARA_REDIS_URL": redis_url, "SOXARA_SECRET_KEY": settings.secret_key,
            "SOXARA_PUBLIC_URL": settings.public_url, "SOXARA_TWILIO_AUTH_TOKEN": settings.twilio_auth_token,
            "SOXARA_CLAIM_WINDOW_HOURS": str(settings.claim_window_hours), "PYTHONUNBUFFERED": "1",
        })
        if self.sent_path is not None:
            env["SOXARA_TEST_SENT_LOG"] = str(self.sent_path)
            self.argv = [sys.executable, "-c", _RECORDING_WORKER]
        else:
            self.argv = [sys.executable, "-c", "import sys; from api.cli import main; sys.exit(main(['worker']))"]
        self.env = env
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> WorkerProcess:
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in __exit__
        self.proc = subprocess.Popen(self.argv, cwd=REPO, env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.stop()
        self._log.close()
        if exc_type is not None:  # shown with the failed test's output
            print(f"--- the worker's log, {self.log_path}, ends:\n" + self.log()[-6000:])

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def running(self) -> bool:
        """True while it runs; an AssertionError once it has exited (a wait ends there)."""
        assert self.alive(), f"the worker exited with {self.proc.returncode if self.proc else None}"
        return True

    def stop(self) -> int | None:
        """SIGTERM, as a supervisor stops it; the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def sent(self) -> list[dict]:
        """What the recording transport sent, in order: {"to", "body"} each."""
        if self.sent_path is None or not self.sent_path.exists():
            return []
        return [json.loads(line) for line in self.sent_path.read_text().splitlines() if line]
