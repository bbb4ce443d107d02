"""The runtime a job runs against.

The in-process runner passes its own runtime to each job; an RQ worker process builds
one from the environment (workers/runtime.py) when `soxara worker` starts, or the first
time a job asks for it.
"""

from __future__ import annotations

import threading

from core.config import Settings
from core.runtime import Runtime

_lock = threading.Lock()
_runtime: Runtime | None = None


def runtime_for(given: Runtime | None) -> Runtime:
    global _runtime
    if given is not None:
        return given
    with _lock:
        if _runtime is None:
            from workers.runtime import build_runtime

            _runtime = build_runtime(Settings.from_env())
        return _runtime


def set_process_runtime(rt: Runtime | None) -> None:
    global _runtime
    with _lock:
        _runtime = rt
