"""Payment and refund jobs, and their sweeps: ask a customer in the chat, poll a rail,
expire an approval; send a refund over its rail."""

from __future__ import annotations

from bot import copy, dialog
from core.amounts import format_amount
from core.db import UnitOfWork, utcnow
from core.messaging import outbox
from core.payments import payments, refunds
from workers.context import runtime_for
from workers.scheduled import each_row


def ask_in_chat(rt):
    """How a worker asks a customer to approve a wallet payment: the approvals flow, or,
    for a phone not logged in in the chat, a message saying how to answer it."""

    def ask(uow: UnitOfWork, p: payments.Payment, merchant: str) -> None:
        assert p.payer_phone is not None
        if not dialog.start_flow(uow, rt, p.payer_phone, "approvals", payment=p.id):
            outbox.send_whatsapp(uow, rt, p.payer_phone, copy.approval_waiting(
                format_amount(p.amount, p.currency), merchant, payments.description_shown(p)))

    return ask


def advance(payment_id: str, runtime=None) -> None:
    rt = runtime_for(runtime)
    with rt.uow() as uow:
        payments.advance(uow, rt, payment_id, ask=ask_in_chat(rt))
        uow.commit()


def advance_due(runtime=None, now=None, limit: int = 200) -> int:
    """Every payment a worker must look at now: how many were looked at."""
    rt, now = runtime_for(runtime), now or utcnow()
    with rt.uow() as uow:
        due = payments.due(uow, now, limit)
    ask = ask_in_chat(rt)
    return each_row(rt, "payment", due,
                    lambda uow, pid: payments.advance(uow, rt, pid, ask=ask, now=now) is not None)


def advance_refund(refund_id: str, runtime=None) -> None:
    rt = runtime_for(runtime)
    with rt.uow() as uow:
        refunds.advance(uow, rt, refund_id)
        uow.commit()


def advance_refunds_due(runtime=None, now=None, limit: int = 200) -> int:
    rt, now = runtime_for(runtime), now or utcnow()
    with rt.uow() as uow:
        due = refunds.due(uow, now, limit)
    return each_row(rt, "refund", due, lambda uow, rid: refunds.advance(uow, rt, rid, now) is not None)
