"""Trace ids: one per request, on every response and on every log line it writes.

Here in core, with no Flask in it, so that anything that logs (the API, the bot, the
workers, the CLI) stamps its lines the same way; the API sets a new id per request
(api/app.py) and puts it on the response (api/envelope.py). Jobs carry the id of what
enqueued them, and the workers run them under it (`traced`, workers/jobs.py).
"""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

_trace_id: contextvars.ContextVar[str] = contextvars.ContextVar("trace_id", default="-")


def new_trace_id() -> str:
    tid = "trc_" + uuid.uuid4().hex
    _trace_id.set(tid)
    return tid


def current_trace_id() -> str:
    return _trace_id.get()


@contextmanager
def traced(trace_id: str | None = None) -> Iterator[str]:
    """Inside, log lines carry `trace_id` (a new one when None or unset "-"); after, the
    id from before. A job runs under the trace id of whatever enqueued it (a request, a
    tick), so its lines can be found with the request's; each tick of the scheduler
    gets its own."""
    tid = trace_id if trace_id and trace_id != "-" else "trc_" + uuid.uuid4().hex
    token = _trace_id.set(tid)
    try:
        yield tid
    finally:
        _trace_id.reset(token)


class TraceIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.trace_id = _trace_id.get()
        return True


LOG_FORMAT = "%(asctime)s %(levelname)s [%(trace_id)s] %(name)s: %(message)s"


_base_factory = logging.getLogRecordFactory()

# A payment's client secret (`pi_…_secret_…`) pays that payment, and the hosted pay page
# takes it in its query string, which access logs print (gunicorn's request line,
# werkzeug's): every log line has it cut out, whatever logger wrote it.
_CLIENT_SECRET = re.compile(r"(_secret_|client_secret=)[^&\s\"']+")
REDACTED = "[redacted]"


def redact_secrets(text: str) -> str:
    """`text` with every client secret (and any `client_secret=` value) cut out."""
    return _CLIENT_SECRET.sub(r"\1" + REDACTED, text)


def _record_with_trace_id(*args, **kwargs) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    record.trace_id = _trace_id.get()
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a malformed call: left for logging to report as it does
        return record
    if "secret" in message:
        redacted = redact_secrets(message)
        if redacted != message:
            record.msg, record.args = redacted, None
    return record


def install_logging(level=logging.INFO) -> None:
    """Every log line carries the trace id of the request that wrote it, and no client
    secret.

    Both are done to the record when it is made (not by one handler's filter), so every
    handler and formatter, ours or a library's (gunicorn's access log, werkzeug's), gets
    them.
    """
    logging.setLogRecordFactory(_record_with_trace_id)
    root = logging.getLogger()
    if any(isinstance(f, TraceIdFilter) for h in root.handlers for f in h.filters):
        return
    handler = logging.StreamHandler()
    handler.addFilter(TraceIdFilter())
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
