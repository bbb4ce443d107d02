"""Getting in: a login code sent into the chat, and (the first time) a PIN typed twice.

The engine hands every message from a phone that is not logged in here. A command typed
while logged out (`BAL`, `SEND …`, `CLAIM …`) is kept as `resume` and carried out right
after the login. The code itself is judged by core before the message's transaction
begins (bot/dialog.py `judge_login_code`); this flow reads the verdict.
"""

from __future__ import annotations

from bot import copy, parse, services
from bot.flows import balance, claim, steps
from bot.flows.base import MENU, NEW, SESSION_IDLE, Flow, Step, Turn, registry
from core.errors import InvalidInput, RateLimited
from core.identity import users
from core.wallets import claims, transfers


def _cancelled(turn: Turn) -> str:
    # Only the PIN steps are ever under way while logged in: a PIN is needed for
    # everything that moves money, so it is asked for again later.
    return copy.NOTHING_TO_CANCEL if turn.state == code_step.name else copy.PIN_UNCHANGED


flow = Flow("login", cancel=_cancelled)


def is_command(text: str) -> bool:
    """Worth carrying through the login."""
    return parse.keyword(text) == "BAL" or registry.command_in(text) is not None


def start(turn: Turn, resume: str | None = None) -> None:
    first = turn.convo.user_id is None or turn.state == NEW
    user = users.get_or_create(turn.uow, turn.phone, turn.profile_name)
    turn.convo.user_id = user.id
    # Only a command is worth carrying through the login ("BAL", "SEND …", "CLAIM …").
    keep = resume if resume and is_command(resume) else None
    sent_at = None if parse.wants_new_code(resume) else \
        services.code_waiting_since(turn.uow, turn.phone, turn.now)
    if sent_at is not None:
        # Another code would replace one that still works and spend the phone's
        # limit: say when it was sent, and send a new one only on request (NEW).
        turn.go(code_step, resume=keep or turn.values.get("resume"))
        turn.say(copy.code_waiting(int((turn.now - sent_at).total_seconds())))
        return
    if first:
        turn.say(copy.welcome_new(turn.profile_name or user.profile_name))
        waiting = claims.pending_claims_for(turn.uow, turn.phone, turn.livemode)
        for t in waiting[:3]:
            turn.say(copy.money_waiting(t.amount, t.currency, transfers.sender_label(turn.uow, t)))
    else:
        turn.say(copy.welcome_back(turn.profile_name or user.profile_name))
    turn.go(code_step, resume=keep)
    send_code(turn, copy.CODE_SENT)


def send_code(turn: Turn, then: str) -> None:
    try:
        # A refusal is not counted (as over the API): asking again while refused
        # must not push the wait further out. This transaction commits regardless.
        with turn.uow.savepoint():
            services.issue_code(turn.uow, turn.rt, turn.phone)
    except RateLimited as e:
        waiting = services.code_waiting_since(turn.uow, turn.phone, turn.now) is not None
        turn.say(copy.code_rate_limited(e.retry_after, last_code_works=waiting))
        return
    turn.say(then)


def on_code(turn: Turn, text: str) -> None:
    if parse.wants_new_code(text):
        send_code(turn, copy.CODE_RESENT)
        return
    if parse.otp(text) is None:
        turn.say(copy.again(copy.CODE_PROMPT))
        return
    verdict = turn.code_verdict
    if verdict is None:
        # Judged only before the transaction began, and this one was not (the step
        # changed under a concurrent message): ask for it again rather than guess.
        turn.say(copy.CODE_PROMPT)
        return
    if verdict.dead:
        turn.say(copy.CODE_DEAD)
        return
    if verdict.user_id is None:  # not ok: the code was wrong
        turn.say(copy.code_wrong(verdict.attempts_remaining))
        return
    user = users.get(turn.uow, verdict.user_id)
    turn.convo.user_id = user.id
    turn.convo.session_expires_at = turn.now + SESSION_IDLE
    turn.say(copy.LOGGED_IN)
    resume = turn.values.get("resume")
    if not services.has_pin(turn.uow, user.id):
        turn.go(pin_choose, resume=resume)
        turn.say(copy.PIN_CHOOSE)
        return
    after_login(turn, resume)


def after_login(turn: Turn, resume: str | None) -> None:
    turn.go(MENU)
    if resume:
        run_command(turn, resume)
        return
    if not claim.offer(turn):
        turn.say(turn.menu())


def run_command(turn: Turn, text: str) -> None:
    """Carry out a command typed before the login, now that the person is in."""
    if parse.keyword(text) == "BAL":
        balance.show(turn)
        return
    found = registry.command_in(text)
    if found is not None:
        command, parsed = found
        command.run(turn, parsed)
        return
    turn.say(turn.menu())


def first_pin_set(turn: Turn, pin: str) -> None:
    resume = turn.values.get("resume")
    try:
        services.set_pin(turn.uow, turn.logged_in_user_id, pin)
    except InvalidInput as e:
        if (e.details or {}).get("field") == "current_pin":
            # A PIN was set elsewhere since this chat asked for one: it stands.
            turn.say(copy.pin_already_set(registry.menu_number("pin")))
            after_login(turn, resume)
            return
        turn.go(pin_choose, resume=resume)
        turn.say(copy.pin_rejected(e.message))
        return
    turn.say(copy.PIN_SET)
    after_login(turn, resume)


code_step = flow.add(Step("login_code", on_code, lambda turn: copy.CODE_PROMPT, secret=True))
# Annotated: the steps name each other, so mypy cannot infer their types from the order.
pin_choose: Step = flow.add(steps.new_pin("pin_choose", copy.PIN_CHOOSE, repeat=lambda: pin_repeat))
pin_repeat: Step = flow.add(steps.repeat_pin("pin_repeat", choose=lambda: pin_choose, then=first_pin_set,
                                       carry=("resume",)))
