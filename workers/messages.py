"""Delivering outbound WhatsApp messages (core/messaging/outbox.py) through the runtime's transport."""

from __future__ import annotations

import logging

from core.db import utcnow
from core.messaging import outbox
from workers.context import runtime_for
from workers.scheduled import each_row

log = logging.getLogger("soxara.messages")

def deliver(message_id: str, runtime=None) -> int:
    """Send one message, and any older one to the same phone still waiting, in order.

    Safe to run twice or concurrently: a sent message is skipped, and the rows are
    locked while they are sent. A failure is recorded for the sweep to retry; it is not
    raised, since the transaction that wrote the message has long committed.
    """
    return deliver_many([message_id], runtime)


def deliver_many(message_ids: list[str], runtime=None) -> int:
    """`deliver` for many messages at once, a transaction per DELIVER_BATCH of them: what
    the in-process runner calls with the deliveries queued while it was busy."""
    rt = runtime_for(runtime)
    transport, sent = rt.transport, 0
    for i in range(0, len(message_ids), outbox.DELIVER_BATCH):
        with rt.uow() as uow:
            sent += outbox.deliver_up_to(uow, rt.secret_key, transport,
                                            message_ids[i:i + outbox.DELIVER_BATCH])
            uow.commit()
    return sent


def retry_due(runtime=None, now=None) -> int:
    """The sweep: deliver for every phone with a message whose (re)try is due, a phone at
    a time; the count of messages sent."""
    rt, now = runtime_for(runtime), now or utcnow()
    transport = rt.transport
    with rt.uow() as uow:
        phones = outbox.phones_due(uow, now)
    sent = each_row(rt, "message retry", phones,
                    lambda uow, phone: outbox.deliver_pending(uow, rt.secret_key, transport, phone, now=now))
    with rt.uow() as uow:
        outbox.forget_delivered_copies(uow, now)
        uow.commit()
    return sent
