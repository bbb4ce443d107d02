"""The conversation engine: one phone's persisted dialog, advanced one message at a time.

`receive` runs inside the webhook's transaction. It locks the phone's conversation row
(so two messages from one phone take turns, whichever process holds them), stores the
inbound message masked by what the step expected, advances the dialog and queues the
replies, all of which commit together or not at all.

The engine knows no flow by heart. It keeps the phone's lock, the idle timeouts, the
keywords that work at every step (MENU/HI, CANCEL, HELP, BAL, LOGOUT), the gate to the
login, the shortcuts the flows declare, and routes every other message to the current
step of the current flow (bot/flows/). What a step masks, what it asks again and what
CANCEL says in it come from the flow's declarations.

Money moves only through core (transfers, deposits), only after a confirmation that
shows amount, currency and counterparty, and only after core accepts the PIN; each
confirmation is carried out at most once (bot/flows/steps.py `carry_out_once`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot import copy, parse, services
from bot.flows import balance, login, registry
from bot.flows.base import LOGGED_OUT, MENU, NEW, RESTING, SESSION_IDLE, Turn
from core.db import UnitOfWork, utcnow
from core.messaging import conversations

log = logging.getLogger("soxara.bot")

# A half-finished flow (a send waiting for its PIN…) is dropped after this long.
FLOW_IDLE = timedelta(minutes=10)
# Keywords stay readable in the transcript even when a secret was expected.
KEYWORDS_IN_CLEAR = frozenset(parse.KEYWORD_WORDS | parse.NEW_CODE_WORDS | parse.NO_WORDS)

__all__ = ["FLOW_IDLE", "SESSION_IDLE", "Inbound", "judge_login_code", "receive", "recover", "respond",
           "start_flow"]


@dataclass
class Inbound:
    """One message from Twilio, already checked and normalised."""

    phone: str
    text: str
    message_sid: str
    profile_name: str | None = None
    num_media: int = 0


def mask_for_transcript(state: str, msg: Inbound) -> str:
    if msg.num_media and not msg.text.strip():
        return f"[media: {msg.num_media} attachment{'s' if msg.num_media != 1 else ''}]"
    step = registry.step(state)
    return conversations.mask_inbound(msg.text, expects_secret=bool(step and step.secret),
                                      keywords=KEYWORDS_IN_CLEAR,
                                      numbers_expected=bool(step and step.number),
                                      command=registry.command_in(msg.text) is not None)


def judge_login_code(uow: UnitOfWork, rt, msg: Inbound,
                     now: datetime | None = None) -> services.CodeVerdict | None:
    """If this message answers a login-code step, core's verdict on the code; else None.

    Runs before `uow` has begun: core.identity.otp judges a code in a transaction of its own,
    which must neither wait on our conversation lock (SQLite has one writer; on
    PostgreSQL the wait would be invisible to its deadlock detector) nor be undone by
    our rollback (a wrong try has to stay counted).
    """
    now = now or utcnow()
    code = parse.otp(parse.clean(msg.text))
    if code is None:
        return None
    with rt.uow() as peek:
        convo = conversations.find(peek, msg.phone)
        if convo is None or convo.state != login.code_step.name or convo.logged_in(now) \
                or conversations.seen(peek, msg.message_sid):
            return None
        idle = conversations.idle_for(convo, now)
        if idle is not None and idle > FLOW_IDLE:
            return None
    return services.judge_code(uow, rt, msg.phone, code)


def receive(uow: UnitOfWork, rt, msg: Inbound, now: datetime | None = None,
            code_verdict: services.CodeVerdict | None = None) -> bool:
    """Handle one inbound message in the caller's transaction. False: seen before, do nothing.

    `code_verdict`: from `judge_login_code`, called with the same `uow` just before.
    """
    now = now or utcnow()
    convo, _created = conversations.lock(uow, msg.phone, NEW)
    if not conversations.record_inbound(uow, convo, msg.message_sid,
                                        mask_for_transcript(convo.state, msg), now):
        return False
    turn = Turn(uow, rt, convo, now, profile_name=msg.profile_name,
                code_verdict=code_verdict)
    try:
        respond(turn, msg)
    finally:
        turn.finish()
    return True


def recover(uow: UnitOfWork, rt, msg: Inbound, now: datetime | None = None) -> bool:
    """After a bug rolled a message back: keep it (so a redelivery is not retried into the
    same bug), start the phone over and say so. Nothing else is done."""
    now = now or utcnow()
    convo, _ = conversations.lock(uow, msg.phone, NEW)
    if not conversations.record_inbound(uow, convo, msg.message_sid,
                                        mask_for_transcript(convo.state, msg), now):
        return False
    logged_in = convo.logged_in(now)
    convo.state = MENU if logged_in else (LOGGED_OUT if convo.user_id else NEW)
    convo.set_values({})
    convo.last_inbound_at = convo.updated_at = now
    services.reply(uow, rt, msg.phone, copy.OOPS)
    return True


def start_flow(uow: UnitOfWork, rt, phone: str, flow_name: str, now: datetime | None = None,
               **values) -> bool:
    """Start a flow from outside the chat (a worker job, a request core raised): lock the
    phone's conversation, put it at the flow's start with these values, and say its first
    question, in the caller's transaction. Whatever the phone was in the middle of is
    dropped, as MENU would. False, changing nothing, when the phone is not logged in in
    the chat (its flows need a login first; the caller tells the person some other way).
    The flow's idle timeout runs from now; the login is not extended (the person said
    nothing)."""
    flow = registry.flow(flow_name)
    now = now or utcnow()
    convo, _ = conversations.lock(uow, phone, NEW)
    turn = Turn(uow, rt, convo, now)
    if not turn.user_id:
        return False
    flow.start(turn, **values)
    turn.finish(from_person=False)
    return True


def respond(turn: Turn, msg: Inbound) -> None:
    """Answer one message: the engine's rules first, then the current step's handler."""
    text = parse.clean(msg.text)
    idle = conversations.idle_for(turn.convo, turn.now)

    timed_out = False
    # A login that lapsed is said so once; the message is then read as from a logged-out phone.
    if turn.convo.user_id and not turn.user_id and turn.convo.session_expires_at \
            and turn.state not in (NEW, LOGGED_OUT, login.code_step.name):
        turn.say(copy.logged_out_idle(int(SESSION_IDLE.total_seconds() // 60)))
        turn.go(LOGGED_OUT)
    elif turn.state not in RESTING and idle is not None and idle > FLOW_IDLE:
        turn.say(copy.TIMED_OUT)
        turn.go(turn.rest_state())
        timed_out = True

    if msg.num_media and not text:
        turn.say(copy.MEDIA_ONLY)
        turn.prompt()
        return

    kw = parse.keyword(text)
    step = registry.step(turn.state)
    if kw is None and step is not None and not step.yes_no and parse.is_no(text):
        kw = "CANCEL"  # "no" to a question that is not yes/no: the person wants out
    if timed_out and turn.user_id and kw not in ("BAL", "HELP", "LOGOUT") \
            and registry.command_in(text) is None:
        # Most likely the answer to the step that just timed out ("1" for YES): reading it
        # at the menu would choose something else. Only the menu, once.
        turn.say(turn.menu())
        return
    if kw:
        on_keyword(turn, kw)
        return

    ack = parse.acknowledgement(text) or ("no" if parse.is_no(text) else None)
    if ack and turn.state in (MENU, LOGGED_OUT) and turn.convo.user_id:
        turn.say(copy.acknowledged(ack, logged_in=bool(turn.user_id)))
        return

    if not turn.user_id:
        if turn.state == login.code_step.name:
            login.on_code(turn, text)
        else:
            login.start(turn, resume=text)
        return

    if not (step and step.secret and parse.pin(text)):
        found = registry.command_in(text)
        if found is not None:
            command, parsed = found
            command.run(turn, parsed)
            return

    if step is not None:
        step.handle(turn, text)
    elif turn.state in RESTING:
        on_menu(turn, text)
    else:  # a state this version no longer knows: start over
        turn.home()
        turn.say(turn.menu())


def on_menu(turn: Turn, text: str) -> None:
    flow = registry.menu_choice(text)
    if flow is not None:
        flow.start(turn)
        return
    understood = registry.understood_at_menu(text)
    if understood is not None:
        flow, values = understood
        flow.start(turn, **values)
        return
    turn.say(copy.DIDNT_GET + "\n\n" + turn.menu())


def on_keyword(turn: Turn, kw: str) -> None:
    """MENU, CANCEL, HELP, BAL and LOGOUT, at every step."""
    if kw == "HELP":
        turn.say(copy.HELP)
        if turn.state not in RESTING:
            turn.prompt()
        return
    if not turn.user_id:
        if kw == "CANCEL":
            turn.go(turn.rest_state())
            turn.say(copy.NOT_LOGGED_IN_CANCEL)
        elif kw == "LOGOUT":
            turn.go(turn.rest_state())
            turn.say(copy.LOGGED_OUT)
        else:  # MENU, BAL: both need a login first
            login.start(turn, resume="BAL" if kw == "BAL" else None)
        return
    if kw == "MENU":
        turn.home()
        turn.say(turn.menu())
    elif kw == "CANCEL":
        flow = registry.flow_of(turn.state)
        turn.say(flow.cancelled(turn) if flow else copy.NOTHING_TO_CANCEL)
        turn.home()
        turn.say(turn.menu())
    elif kw == "BAL":
        balance.show(turn)
        if turn.state not in RESTING:
            turn.prompt()
    elif kw == "LOGOUT":
        turn.convo.session_expires_at = None
        turn.go(LOGGED_OUT)
        turn.say(copy.LOGGED_OUT)
