"""The one place a process's runtime is built from its settings: the web app
(api/app.py), the CLI, `soxara worker` and its jobs (workers/context.py) and the tests
all call `build_runtime`, so they agree on which outside service is live.

Each outside service is an interface in core with a sandbox implementation beside it;
real ones that need libraries core may not import (twilio, an HTTP client) live here in
workers/. What is chosen is logged once, at start, in one line.
"""

from __future__ import annotations

import logging
from typing import Literal

from core.billers import billers_for
from core.config import Settings
from core.messaging.transports import MessageTransport, SandboxTransport
from core.rails import rails_for
from core.runtime import Runtime
from workers.webhook_sender import HttpWebhookSender

log = logging.getLogger("soxara.runtime")

Jobs = Literal["default", "eager"] | None


def build_runtime(settings: Settings, *, jobs: Jobs = "default") -> Runtime:
    """A runtime with every outside service the settings ask for, and a job queue:

    - "default": RQ when SOXARA_REDIS_URL is set, else the in-process runner in the mode
      SOXARA_INPROCESS_JOBS names (a thread; tests: eager);
    - "eager": the same, but an in-process runner runs each job as it is enqueued (a
      short-lived command: what it causes is done before it exits);
    - None: no job queue (commands that enqueue nothing).
    """
    rt = Runtime(settings, rails=rails_for(settings), transport=transport_for(settings),
                 billers=billers_for(settings), webhooks=HttpWebhookSender())
    if jobs is not None:
        from workers.queue import queue_for

        rt.jobs = queue_for(rt, eager=jobs == "eager")
    log.info(describe(rt))
    return rt


def transport_for(settings: Settings) -> MessageTransport:
    """Twilio when SOXARA_TWILIO_ACCOUNT_SID is set, else the sandbox (which sends nothing:
    its stored rows are the sandbox's outbox)."""
    if not settings.twilio_account_sid:
        return SandboxTransport()
    from workers.twilio_transport import TwilioTransport

    return TwilioTransport(settings.twilio_account_sid, settings.twilio_auth_token, settings.whatsapp_number)


def describe(rt: Runtime) -> str:
    """The start line: what carries live money, and where messages go."""
    transport = "the sandbox (nothing leaves)" if isinstance(rt.transport, SandboxTransport) else "Twilio"
    return f"{rt.rails.describe_live()}; {rt.billers.describe_live()}; WhatsApp messages through {transport}"
