"""Bill payment jobs: pay the biller (or ask it again) for one payment; the sweep that
does it for every payment that is due. core/bills/settlement.py says why each call is
three steps with no transaction open while TIMM is asked."""

from __future__ import annotations

from core.bills import settlement
from core.db import utcnow
from workers.context import runtime_for
from workers.scheduled import each_row


def settle(bill_payment_id: str, runtime=None, now=None) -> bool:
    """Make the payment's next call to TIMM and act on the answer: whether this worker
    made one (another may hold it, or it is settled or not due)."""
    rt, now = runtime_for(runtime), now or utcnow()
    with rt.uow() as uow:
        call = settlement.take(uow, bill_payment_id, now)
        uow.commit()
    if call is None:
        return False
    result = settlement.ask(rt, call, now)
    with rt.uow() as uow:
        settlement.settle(uow, rt, call, result, now)
        uow.commit()
    return True


def settle_due(runtime=None, now=None, limit: int = 200) -> int:
    """Pay, or ask again about, every bill payment that is due: how many calls were made."""
    rt, now = runtime_for(runtime), now or utcnow()
    with rt.uow() as uow:
        due = settlement.due(uow, now, limit)
    # Each payment's calls commit in transactions of their own (settle): each_row's
    # transaction only catches and counts a row that raises.
    return each_row(rt, "bill payment", due, lambda _uow, bp_id: settle(bp_id, rt, now))
