"""Steps several flows share, written once: each flow makes its own from these with its
names, its words and what comes next.

- `amount`, `currency`, `phone`: ask for one value, keep it, and hand over to the flow's
  `then` (which asks for whatever is still missing: `ask_missing`).
- `confirm`: shows what is about to happen (amount, currency, counterparty); YES asks for
  the PIN, NO cancels. `ask_to_confirm` mints the pending action's id as it shows it.
- `pin_then_act`: core judges the PIN, then the action is carried out at most once for
  that pending action's id (`carry_out_once`), whatever arrives twice.
- `new_pin`, `repeat_pin`: a new PIN typed twice (the first entry kept only sealed).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from bot import copy, parse, services
from bot.flows.base import Step, Turn
from core.crypto import keyed_hash
from core.errors import InvalidInput, InvalidState, SoxaraError
from core.idempotency import fingerprint
from core.ids import new_id

Then = Callable[[Turn], None]


def ask_missing(turn: Turn, wanted: Sequence[tuple[str, Step]]) -> bool:
    """Ask the step of the first value the flow does not hold yet; False when it holds all."""
    for key, step in wanted:
        if not turn.values.get(key):
            turn.ask(step)
            return True
    return False


# --- amounts, currencies, numbers --------------------------------------------------------


def read_amount(turn: Turn, text: str) -> parse.AmountReading | None:
    """The amount (and currency, if typed with it), or None after saying what's wrong."""
    try:
        return parse.amount_and_currency(text)
    except InvalidInput as e:
        if e.code == "AMOUNT_TOO_SMALL":
            turn.say(copy.again(copy.AMOUNT_NOT_POSITIVE))
        elif e.code == "AMOUNT_TOO_LARGE":
            turn.say(copy.again(copy.AMOUNT_TOO_LARGE))
        elif parse.too_many_decimals(text):
            turn.say(copy.again(copy.AMOUNT_DECIMALS))
        else:
            turn.say(copy.again(copy.AMOUNT_FORMAT))
        return None


def amount(name: str, question: str, then: Then) -> Step:
    def handle(turn: Turn, text: str) -> None:
        reading = read_amount(turn, text)
        if reading is None:
            return
        turn.keep(amount=reading.amount)
        if reading.currency:
            turn.keep(currency=reading.currency)
        then(turn)

    return Step(name, handle, lambda turn: question, number=True)


def currency(name: str, then: Then) -> Step:
    def handle(turn: Turn, text: str) -> None:
        cur = parse.currency(text)
        if cur is None:
            turn.say(copy.again(copy.CURRENCY_PROMPT))
            return
        turn.keep(currency=cur)
        then(turn)

    return Step(name, handle, lambda turn: copy.CURRENCY_PROMPT)


def read_phone(turn: Turn, text: str, foreign: str) -> str | None:
    """A Liberian number in E.164, or None after saying what's wrong (`foreign`: what to
    say of a valid number of another country)."""
    try:
        return parse.liberian_phone(text)
    except parse.NotLiberian:
        turn.say(copy.again(foreign))
    except InvalidInput:
        turn.say(copy.again(copy.NUMBER_BAD))
    return None


def phone(name: str, question: Callable[[Turn], str], take: Callable[[Turn, str], bool],
          then: Then) -> Step:
    """`take` reads the number (with `read_phone`), checks what the flow needs and keeps
    it; False after saying what's wrong."""
    def handle(turn: Turn, text: str) -> None:
        if take(turn, text):
            then(turn)

    return Step(name, handle, question, number=True)


# --- confirming, and carrying out once ---------------------------------------------------


def ask_to_confirm(turn: Turn, step: Step) -> None:
    """Show the confirmation, minting the id its approval will be carried out under."""
    turn.keep(action=new_id("act"))
    turn.ask(step)


def confirm(name: str, question: Callable[[Turn], str], pin: Step, cancelled: str,
            declined: Callable[[Turn], str] | None = None) -> Step:
    """YES asks for the PIN; NO says `cancelled`, or does `declined` (what NO does in the
    flow, such as declining a merchant's request) and says what it returns."""
    def handle(turn: Turn, text: str) -> None:
        answer = parse.yes_no(text)
        if answer is None:
            turn.say(copy.again(copy.YES_NO + "\n\n" + question(turn)))
        elif answer:
            turn.ask(pin)
        else:
            said = declined(turn) if declined is not None else cancelled
            turn.home()
            turn.say(said)
            turn.say(turn.menu())  # as after CANCEL: a next step, not a dead end

    return Step(name, handle, question, yes_no=True)


def pin_accepted(turn: Turn, text: str) -> bool:
    """Core's verdict on the PIN typed at a confirmation step; says what went wrong."""
    pin = parse.pin(text)
    if pin is None:
        turn.say(copy.PIN_FORMAT)
        turn.prompt()
        return False
    check = services.check_pin(turn.uow, turn.logged_in_user_id, pin)
    if check.ok:
        return True
    if check.not_set:
        from bot.flows import login  # login's first PIN is made of this module's steps

        turn.go(login.pin_choose)
        turn.say(copy.PIN_NOT_SET + "\n" + copy.PIN_CHOOSE)
    elif check.locked:
        turn.home()
        turn.say(copy.pin_locked(check.locked_for))
        turn.say(turn.menu())
    else:
        turn.say(copy.pin_wrong(check.tries_left))
    return False


DONE, DONE_BEFORE, UNDER_WAY = "done", "done before", "under way"


def carry_out_once(turn: Turn, action: Callable[[], Any]) -> tuple[str, Any]:
    """Run a confirmed action at most once for its pending-action id: (DONE, its result),
    or (DONE_BEFORE, None) when another message carried it out already, (UNDER_WAY, None)
    while another holds its key.

    The guard is the API's: core.idempotency's record under scope `bot:<user>` and key the
    action id, claimed before and completed with the action's effects, so both commit
    together or neither does. On SQLite the claim commits a `running` record first (what
    the turn did so far commits with it); a copy that finds it is told the action is
    under way. The action runs in a savepoint: a refusal by core (insufficient funds…)
    undoes what it began and gives the key back, while the message, the dialog's move and
    the PIN check still commit.
    """
    action_id = turn.values.get("action")
    if not action_id:
        raise InvalidState("no pending action")
    store = turn.rt.idempotency
    what = keyed_hash(turn.rt.secret_key, "idempotency",
                      fingerprint("BOT", turn.state, turn.values))
    claim = store.claim(turn.uow, f"bot:{turn.logged_in_user_id}", action_id, what, turn.now)
    if claim.outcome == "replay":
        return DONE_BEFORE, None
    if claim.outcome != "run":
        # Held by a copy still running (or, on SQLite, left by one that died: taken over
        # after RUNNING_STALE); a conflict would be another action under this id.
        return UNDER_WAY, None
    try:
        with turn.uow.savepoint():
            result = action()
            body = json.dumps({"id": getattr(result, "id", None)}).encode()
            store.complete(turn.uow, claim, 200, body, turn.now)
    except SoxaraError:
        # Not carried out: the key is free again once this transaction ends (SQLite's
        # running record goes; on PostgreSQL nothing of it was written).
        turn.uow.after_commit(lambda: store.release(claim))
        raise
    return DONE, result


def pin_then_act(name: str, question: Callable[[Turn], str], act: Callable[[Turn], Any],
                 done: Callable[[Turn, Any], None],
                 refused: Callable[[Turn, SoxaraError], None] | None = None) -> Step:
    """The PIN step of a confirmed action: `act` moves the money through core, `done`
    says what happened, `refused` what core refused (by default its reason)."""
    def handle(turn: Turn, text: str) -> None:
        if not pin_accepted(turn, text):
            return
        try:
            outcome, result = carry_out_once(turn, lambda: act(turn))
        except SoxaraError as e:
            if refused is not None:
                refused(turn, e)
            else:
                turn.say(turn.refusal(e))
            turn.home()
            return
        if outcome == DONE:
            done(turn, result)
        else:
            turn.say(copy.ALREADY_DONE if outcome == DONE_BEFORE else copy.ALREADY_UNDER_WAY)
        turn.home()

    return Step(name, handle, question, secret=True)


# --- a new PIN, typed twice ----------------------------------------------------------------


def new_pin(name: str, question: str, repeat: Callable[[], Step]) -> Step:
    def handle(turn: Turn, text: str) -> None:
        pin = parse.pin(text)
        if pin is None:
            turn.say(copy.again(copy.PIN_FORMAT))
            return
        weak = services.pin_weakness(pin, turn.phone)
        if weak is not None:  # said now, not after it was typed twice
            turn.say(copy.again(copy.pin_rejected(weak)))
            return
        turn.keep(first=turn.seal(pin))  # only sealed, and dropped with the flow
        turn.ask(repeat())

    return Step(name, handle, lambda turn: question, secret=True)


def repeat_pin(name: str, choose: Callable[[], Step], then: Callable[[Turn, str], None],
               carry: tuple[str, ...] = ()) -> Step:
    """`then(turn, pin)` once the two entries match; else back to `choose`, keeping only
    the values named in `carry`."""
    def handle(turn: Turn, text: str) -> None:
        pin = parse.pin(text)
        if pin is None:
            turn.say(copy.again(copy.PIN_FORMAT))
            return
        if pin != turn.unseal(turn.values.get("first")):
            turn.go(choose(), **{key: turn.values.get(key) for key in carry})
            turn.say(copy.PIN_MISMATCH)
            return
        then(turn, pin)

    return Step(name, handle, lambda turn: copy.PIN_REPEAT, secret=True)
