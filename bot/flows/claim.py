"""Claim money sent to this number: offered after the login and from the menu (one YES
claims all that waits: the login proved the phone), or `CLAIM <code>` from the link.

Claiming takes nothing from anyone the person could lose, so the code (which only this
phone received) and the login are the whole check: no PIN.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from bot import copy, parse
from bot.flows.base import Command, Flow, MenuEntry, Step, Turn, registry
from core.errors import InvalidState, NotFound, SoxaraError
from core.wallets import claims, transfers


def _cancelled(turn: Turn) -> str:
    return later() if turn.state == offer_step.name else copy.NOTHING_TO_CANCEL


flow = Flow("claim", menu=MenuEntry(5, copy.MENU_CLAIM), cancel=_cancelled)


def later() -> str:
    return copy.claim_later(registry.menu_number(flow.name))


def offer(turn: Turn) -> bool:
    """Offer the money waiting for this number, if any."""
    waiting = claims.pending_claims_for(turn.uow, turn.phone, turn.livemode)[:5]
    if not waiting:
        return False
    turn.go(offer_step, offer=[t.id for t in waiting])
    turn.say(copy.claim_offer([(t.amount, t.currency, transfers.sender_label(turn.uow, t))
                               for t in waiting]))
    return True


def on_offer(turn: Turn, text: str) -> None:
    answer = parse.yes_no(text)
    if answer is None:
        turn.say(copy.again(copy.YES_NO))
        return
    offered = turn.values.get("offer") or []
    turn.home()
    if not answer:
        turn.say(later())
        return
    # Each on its own: one that expired meanwhile does not stop the others.
    outcomes = [claim_with(turn, functools.partial(
        claims.claim_for_recipient, turn.uow, turn.rt, user_id=turn.logged_in_user_id,
        livemode=turn.livemode, transfer_id=transfer_id)) for transfer_id in offered]
    if "claimed" in outcomes:
        offer_next_step(turn)


def offer_next_step(turn: Turn) -> None:
    """After money came in: one line with what people most often do next."""
    turn.say(copy.after_claim(registry.menu_number("send")))


def claim(turn: Turn, code: str | None) -> None:
    """`CLAIM <code>`: money sent to this number moves in."""
    if not code:
        turn.go(code_step)
        turn.say(copy.CLAIM_ASK)
        return
    outcome = claim_with(turn, lambda: claims.claim(
        turn.uow, turn.rt, user_id=turn.logged_in_user_id, livemode=turn.livemode, claim_code=code))
    # A code that matches nothing may be a typo: the next message is another try.
    if outcome == "not_found":
        turn.go(code_step)
    else:
        turn.home()
    if outcome == "claimed":
        offer_next_step(turn)


def claim_with(turn: Turn, claiming: Callable[[], object]) -> str:
    """Run one claim in a savepoint: "claimed", "not_found" or "refused", having said
    why core refused. core.wallets.transfers itself tells the person ("You claimed $12.50 …
    Ref tr_…") and the sender."""
    try:
        with turn.uow.savepoint():
            claiming()
    except SoxaraError as e:
        if isinstance(e, NotFound):
            turn.say(copy.CLAIM_NOT_FOUND)
            return "not_found"
        if e.code == "CLAIM_EXPIRED":
            turn.say(copy.CLAIM_EXPIRED)
        elif isinstance(e, InvalidState):
            turn.say(copy.CLAIM_ALREADY)
        else:
            turn.say(turn.refusal(e))
        return "refused"
    return "claimed"


def on_code(turn: Turn, text: str) -> None:
    code = text.strip().split()[-1] if text.strip() else ""
    if not code or len(code) > 40:
        turn.say(copy.again(copy.CLAIM_ASK))
        return
    claim(turn, code)


def begin(turn: Turn, **values) -> None:
    if not offer(turn):
        claim(turn, None)


def read_command(text: str) -> tuple[str | None] | None:
    is_claim, code = parse.claim_shortcut(text)
    return (code,) if is_claim else None


offer_step = flow.add(Step("claim_offer", on_offer, lambda turn: copy.YES_NO, yes_no=True))
# A claim code is kept masked in the transcript, as one typed after CLAIM is.
code_step = flow.add(Step("claim_code", on_code, lambda turn: copy.CLAIM_ASK, secret=True, number=True))
flow.begin = begin
flow.command = Command(read=read_command, run=lambda turn, parsed: claim(turn, parsed[0]))
