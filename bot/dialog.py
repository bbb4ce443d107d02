"""The conversation: a state machine over one phone's persisted dialog state.

`receive` runs inside the webhook's transaction. It locks the phone's conversation row
(so two messages from one phone take turns, whichever process holds them), stores the
inbound message masked by what the step expected, advances the dialog and queues the
replies, all of which commit together or not at all.

Money moves only through core (transfers, deposits), only after a confirmation that
shows amount, currency and counterparty, and only after core accepts the PIN. Each
confirmation mints a pending-action id; carrying it out is recorded under that id in
the same transaction as the money, so a PIN delivered twice cannot pay twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot import copy, parse, services
from core import names
from core.crypto import Sealer
from core.db import UnitOfWork, utcnow
from core.errors import (
    InsufficientFunds,
    InvalidInput,
    InvalidState,
    NotFound,
    RateLimited,
    SoxaraError,
)
from core.identity import users
from core.ids import new_id
from core.messaging import conversations
from core.wallets import claims, ledger, transfers, wallets

log = logging.getLogger("soxara.bot")

# A login in the chat lasts this long after the person's last message.
SESSION_IDLE = timedelta(minutes=30)
# A half-finished flow (a send waiting for its PIN…) is dropped after this long.
FLOW_IDLE = timedelta(minutes=10)


class S:
    """Dialog states."""

    NEW = "new"                      # never logged in here
    LOGGED_OUT = "logged_out"        # known, session ended
    LOGIN_CODE = "login_code"        # waiting for the OTP
    PIN_CHOOSE = "pin_choose"
    PIN_REPEAT = "pin_repeat"
    MENU = "menu"
    SEND_AMOUNT = "send_amount"
    SEND_CURRENCY = "send_currency"
    SEND_RECIPIENT = "send_recipient"
    SEND_CONFIRM = "send_confirm"
    SEND_PIN = "send_pin"
    ADD_AMOUNT = "add_amount"
    ADD_CURRENCY = "add_currency"
    ADD_METHOD = "add_method"
    ADD_PHONE = "add_phone"
    ADD_CONFIRM = "add_confirm"
    ADD_PIN = "add_pin"
    CLAIM_CODE = "claim_code"
    CLAIM_OFFER = "claim_offer"      # money waiting for this number: claim it now?
    PIN_CHANGE_NEW = "pin_change_new"
    PIN_CHANGE_REPEAT = "pin_change_repeat"
    PIN_CHANGE_CURRENT = "pin_change_current"


# Replies to these steps are PINs or codes: the transcript keeps "••••".
SECRET_STATES = frozenset({S.LOGIN_CODE, S.PIN_CHOOSE, S.PIN_REPEAT, S.SEND_PIN, S.ADD_PIN,
                           S.PIN_CHANGE_NEW, S.PIN_CHANGE_REPEAT, S.PIN_CHANGE_CURRENT})
# Steps where a bare number is an ordinary answer (an amount, a phone number, a code).
NUMBER_STATES = frozenset({S.SEND_AMOUNT, S.ADD_AMOUNT, S.SEND_RECIPIENT, S.ADD_PHONE,
                           S.CLAIM_CODE})
RESTING = frozenset({S.NEW, S.LOGGED_OUT, S.MENU})
SEND_FLOW = frozenset({S.SEND_AMOUNT, S.SEND_CURRENCY, S.SEND_RECIPIENT, S.SEND_CONFIRM, S.SEND_PIN})
ADD_FLOW = frozenset({S.ADD_AMOUNT, S.ADD_CURRENCY, S.ADD_METHOD, S.ADD_PHONE, S.ADD_CONFIRM,
                      S.ADD_PIN})
PIN_FLOW = frozenset({S.PIN_CHANGE_NEW, S.PIN_CHANGE_REPEAT, S.PIN_CHANGE_CURRENT})
# Keywords stay readable in the transcript even when a secret was expected.
KEYWORDS_IN_CLEAR = frozenset(parse.KEYWORD_WORDS | parse.NEW_CODE_WORDS)


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
    command = parse.send_shortcut(msg.text) is not None or parse.claim_shortcut(msg.text)[0]
    # A claim code answering "which code?" is kept masked, as one after CLAIM is.
    return conversations.mask_inbound(msg.text, expects_secret=state in SECRET_STATES or state == S.CLAIM_CODE,
                                      keywords=KEYWORDS_IN_CLEAR,
                                      numbers_expected=state in NUMBER_STATES, command=command)


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
        if convo is None or convo.state != S.LOGIN_CODE or convo.logged_in(now) \
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
    convo, _created = conversations.lock(uow, msg.phone, S.NEW)
    if not conversations.record_inbound(uow, convo, msg.message_sid,
                                        mask_for_transcript(convo.state, msg), now):
        return False
    Dialog(uow, rt, convo, msg, now, code_verdict=code_verdict).run()
    return True


def recover(uow: UnitOfWork, rt, msg: Inbound, now: datetime | None = None) -> bool:
    """After a bug rolled a message back: keep it (so a redelivery is not retried into the
    same bug), start the phone over and say so. Nothing else is done."""
    now = now or utcnow()
    convo, _ = conversations.lock(uow, msg.phone, S.NEW)
    if not conversations.record_inbound(uow, convo, msg.message_sid,
                                        mask_for_transcript(convo.state, msg), now):
        return False
    logged_in = convo.logged_in(now)
    convo.state = S.MENU if logged_in else (S.LOGGED_OUT if convo.user_id else S.NEW)
    convo.set_values({})
    convo.last_inbound_at = convo.updated_at = now
    services.reply(uow, rt, msg.phone, copy.OOPS)
    return True


@dataclass
class Dialog:
    uow: UnitOfWork
    rt: object
    convo: conversations.Conversation
    msg: Inbound
    now: datetime
    code_verdict: services.CodeVerdict | None = None
    values: dict = field(default_factory=dict)

    def __post_init__(self):
        self.values = self.convo.values
        self.phone = self.msg.phone
        self.livemode = self.rt.settings.user_mode_live

    # --- plumbing ------------------------------------------------------------------------

    @property
    def state(self) -> str:
        return self.convo.state

    @property
    def user_id(self) -> str | None:
        return self.convo.user_id if self.convo.logged_in(self.now) else None

    def say(self, text: str) -> None:
        services.reply(self.uow, self.rt, self.phone, text)

    def goto(self, state: str, **values) -> None:
        """Move to `state` with exactly these working values (a flow starts clean)."""
        self.convo.state = state
        self.values = dict(values)

    def keep(self, **values) -> None:
        self.values.update(values)

    def finish(self) -> None:
        self.convo.set_values(self.values)
        self.convo.last_inbound_at = self.now
        self.convo.updated_at = self.now
        if self.user_id:
            # Every message keeps the login alive.
            self.convo.session_expires_at = self.now + SESSION_IDLE

    def rest_state(self) -> str:
        if self.user_id:
            return S.MENU
        return S.LOGGED_OUT if self.convo.user_id else S.NEW

    # --- the turn ------------------------------------------------------------------------

    def run(self) -> None:
        try:
            self.turn()
        finally:
            self.finish()

    def turn(self) -> None:
        text = parse.clean(self.msg.text)
        idle = conversations.idle_for(self.convo, self.now)

        # A login that lapsed is said so once; the message is then read as from a logged-out phone.
        if self.convo.user_id and not self.user_id and self.convo.session_expires_at \
                and self.state not in (S.NEW, S.LOGGED_OUT, S.LOGIN_CODE):
            self.say(copy.logged_out_idle(int(SESSION_IDLE.total_seconds() // 60)))
            self.goto(S.LOGGED_OUT)
        elif self.state not in RESTING and idle is not None and idle > FLOW_IDLE:
            self.say(copy.TIMED_OUT)
            self.goto(self.rest_state())

        if self.msg.num_media and not text:
            self.say(copy.MEDIA_ONLY)
            self.prompt()
            return

        kw = parse.keyword(text)
        if kw:
            self.on_keyword(kw, text)
            return

        if not self.user_id:
            if self.state == S.LOGIN_CODE:
                self.on_login_code(text)
            else:
                self.start_login(resume=text)
            return

        if self.state not in SECRET_STATES or not parse.pin(text):
            shortcut = parse.send_shortcut(text)
            if shortcut is not None:
                self.start_send(shortcut)
                return
            is_claim, code = parse.claim_shortcut(text)
            if is_claim:
                self.claim(code)
                return

        handler = getattr(self, "on_" + self.state, None)
        if handler is None:  # a state this version no longer knows: start over
            self.goto(S.MENU)
            self.say(copy.MENU)
            return
        handler(text)

    def prompt(self) -> None:
        """Say again what the current step is waiting for."""
        v = self.values
        st = self.state
        if st in (S.NEW, S.LOGGED_OUT):
            self.say(copy.HELP if not self.user_id else copy.MENU)
        elif st == S.LOGIN_CODE:
            self.say(copy.CODE_PROMPT)
        elif st == S.PIN_CHOOSE:
            self.say(copy.PIN_CHOOSE)
        elif st in (S.PIN_REPEAT, S.PIN_CHANGE_REPEAT):
            self.say(copy.PIN_REPEAT)
        elif st == S.MENU:
            self.say(copy.MENU)
        elif st in (S.SEND_AMOUNT,):
            self.say(copy.SEND_AMOUNT)
        elif st in (S.SEND_CURRENCY, S.ADD_CURRENCY):
            self.say(copy.CURRENCY_PROMPT)
        elif st == S.SEND_RECIPIENT:
            self.say(copy.send_recipient(v["amount"], v["currency"]))
        elif st == S.SEND_CONFIRM:
            self.say(copy.send_confirm(v["amount"], v["currency"], v["label"]))
        elif st == S.SEND_PIN:
            self.say(copy.send_pin(v["amount"], v["currency"], v["label"]))
        elif st == S.ADD_AMOUNT:
            self.say(copy.ADD_AMOUNT)
        elif st == S.ADD_METHOD:
            self.say(copy.add_method(v["amount"], v["currency"]))
        elif st == S.ADD_PHONE:
            self.say(copy.add_phone(v["method"], self.phone))
        elif st == S.ADD_CONFIRM:
            self.say(copy.add_confirm(v["amount"], v["currency"], v["method"], v["pay_phone"]))
        elif st == S.ADD_PIN:
            self.say(copy.add_pin(v["amount"], v["currency"], v["method"], v["pay_phone"]))
        elif st == S.CLAIM_CODE:
            self.say(copy.CLAIM_ASK)
        elif st == S.CLAIM_OFFER:
            self.say(copy.YES_NO)
        elif st == S.PIN_CHANGE_NEW:
            self.say(copy.PIN_NEW)
        elif st == S.PIN_CHANGE_CURRENT:
            self.say(copy.PIN_CURRENT_TO_APPROVE)
        else:
            self.say(copy.MENU)

    # --- keywords, at every step ---------------------------------------------------------

    def on_keyword(self, kw: str, text: str) -> None:
        if kw == "HELP":
            self.say(copy.HELP)
            if self.state not in RESTING:
                self.prompt()
            return
        if not self.user_id:
            if kw == "CANCEL":
                self.goto(self.rest_state())
                self.say(copy.NOT_LOGGED_IN_CANCEL)
            elif kw == "LOGOUT":
                self.goto(self.rest_state())
                self.say(copy.LOGGED_OUT)
            else:  # MENU, BAL: both need a login first
                self.start_login(resume="BAL" if kw == "BAL" else None)
            return
        if kw == "MENU":
            self.goto(S.MENU)
            self.say(copy.MENU)
        elif kw == "CANCEL":
            if self.state in SEND_FLOW:
                self.say(copy.SEND_CANCELLED)
            elif self.state in ADD_FLOW:
                self.say(copy.ADD_CANCELLED)
            elif self.state in PIN_FLOW:
                self.say(copy.PIN_UNCHANGED)
            elif self.state == S.CLAIM_OFFER:
                self.say(copy.CLAIM_LATER)
            elif self.state in (S.PIN_CHOOSE, S.PIN_REPEAT):
                # A PIN is needed for everything that moves money: ask again later.
                self.say(copy.PIN_UNCHANGED)
            else:
                self.say(copy.NOTHING_TO_CANCEL)
            self.goto(S.MENU)
            self.say(copy.MENU)
        elif kw == "BAL":
            self.show_balance()
            if self.state not in RESTING:
                self.prompt()
        elif kw == "LOGOUT":
            self.convo.session_expires_at = None
            self.goto(S.LOGGED_OUT)
            self.say(copy.LOGGED_OUT)

    # --- login ---------------------------------------------------------------------------

    def start_login(self, resume: str | None = None) -> None:
        first = self.convo.user_id is None or self.state == S.NEW
        user = users.get_or_create(self.uow, self.phone, self.msg.profile_name)
        self.convo.user_id = user.id
        # Only a command is worth carrying through the login ("BAL", "SEND …", "CLAIM …").
        keep = resume if resume and self.is_command(resume) else None
        sent_at = None if parse.wants_new_code(resume) else \
            services.code_waiting_since(self.uow, self.phone, self.now)
        if sent_at is not None:
            # Another code would replace one that still works and spend the phone's
            # limit: say when it was sent, and send a new one only on request (NEW).
            self.goto(S.LOGIN_CODE, resume=keep or self.values.get("resume"))
            self.say(copy.code_waiting(int((self.now - sent_at).total_seconds())))
            return
        if first:
            self.say(copy.welcome_new(self.msg.profile_name or user.profile_name))
            waiting = claims.pending_claims_for(self.uow, self.phone, self.livemode)
            for t in waiting[:3]:
                self.say(copy.money_waiting(t.amount, t.currency, self.sender_label(t), t.id))
        else:
            self.say(copy.welcome_back(self.msg.profile_name or user.profile_name))
        self.goto(S.LOGIN_CODE, resume=keep)
        self.send_code(copy.CODE_SENT)

    def is_command(self, text: str) -> bool:
        return bool(parse.keyword(text) == "BAL" or parse.send_shortcut(text)
                    or parse.claim_shortcut(text)[0])

    def send_code(self, then: str) -> None:
        try:
            # A refusal is not counted (as over the API): asking again while refused
            # must not push the wait further out. This transaction commits regardless.
            with self.uow.savepoint():
                services.issue_code(self.uow, self.rt, self.phone)
        except RateLimited as e:
            waiting = services.code_waiting_since(self.uow, self.phone, self.now) is not None
            self.say(copy.code_rate_limited(e.retry_after, last_code_works=waiting))
            return
        self.say(then)

    def on_login_code(self, text: str) -> None:
        if parse.wants_new_code(text):
            self.send_code(copy.CODE_RESENT)
            return
        if parse.otp(text) is None:
            self.say(copy.CODE_PROMPT)
            return
        verdict = self.code_verdict
        if verdict is None:
            # Judged only before the transaction began, and this one was not (the step
            # changed under a concurrent message): ask for it again rather than guess.
            self.say(copy.CODE_PROMPT)
            return
        if verdict.dead:
            self.say(copy.CODE_DEAD)
            return
        if not verdict.ok:
            self.say(copy.code_wrong(verdict.attempts_remaining))
            return
        user = users.get(self.uow, verdict.user_id)
        self.convo.user_id = user.id
        self.convo.session_expires_at = self.now + SESSION_IDLE
        self.say(copy.LOGGED_IN)
        resume = self.values.get("resume")
        if not services.has_pin(self.uow, user.id):
            self.goto(S.PIN_CHOOSE, resume=resume)
            self.say(copy.PIN_CHOOSE)
            return
        self.after_login(resume)

    def after_login(self, resume: str | None) -> None:
        self.goto(S.MENU)
        if resume:
            self.turn_as(resume)
            return
        if not self.offer_claims():
            self.say(copy.MENU)

    def turn_as(self, text: str) -> None:
        """Carry out a command typed before the login, now that the person is in."""
        if parse.keyword(text) == "BAL":
            self.show_balance()
            return
        shortcut = parse.send_shortcut(text)
        if shortcut is not None:
            self.start_send(shortcut)
            return
        is_claim, code = parse.claim_shortcut(text)
        if is_claim:
            self.claim(code)
            return
        self.say(copy.MENU)

    # --- choosing a PIN (first login) -----------------------------------------------------

    def seal(self, pin: str) -> str:
        return Sealer(self.rt.secret_key).seal(pin.encode()).decode()

    def unseal(self, token: str | None) -> str | None:
        if not token:
            return None
        raw = Sealer(self.rt.secret_key).open(token.encode())
        return raw.decode() if raw is not None else None

    def on_pin_choose(self, text: str) -> None:
        pin = parse.pin(text)
        if pin is None:
            self.say(copy.PIN_FORMAT)
            return
        self.goto(S.PIN_REPEAT, resume=self.values.get("resume"), first=self.seal(pin))
        self.say(copy.PIN_REPEAT)

    def on_pin_repeat(self, text: str) -> None:
        pin = parse.pin(text)
        if pin is None:
            self.say(copy.PIN_FORMAT)
            return
        resume = self.values.get("resume")
        if pin != self.unseal(self.values.get("first")):
            self.goto(S.PIN_CHOOSE, resume=resume)
            self.say(copy.PIN_MISMATCH)
            return
        try:
            services.set_pin(self.uow, self.user_id, pin)
        except InvalidInput as e:
            if (e.details or {}).get("field") == "current_pin":
                # A PIN was set elsewhere since this chat asked for one: it stands.
                self.say(copy.PIN_ALREADY_SET)
                self.after_login(resume)
                return
            self.goto(S.PIN_CHOOSE, resume=resume)
            self.say(copy.pin_rejected(e.message))
            return
        self.say(copy.PIN_SET)
        self.after_login(resume)

    # --- the menu ------------------------------------------------------------------------

    def on_menu(self, text: str) -> None:
        choice = parse.menu_choice(text)
        if choice == "balance":
            self.show_balance()
        elif choice == "send":
            self.goto(S.SEND_AMOUNT)
            self.say(copy.SEND_AMOUNT)
        elif choice == "add":
            self.goto(S.ADD_AMOUNT)
            self.say(copy.ADD_AMOUNT)
        elif choice == "history":
            self.show_history()
        elif choice == "claim":
            if not self.offer_claims():
                self.goto(S.CLAIM_CODE)
                self.say(copy.CLAIM_ASK)
        elif choice == "pin":
            self.goto(S.PIN_CHANGE_NEW)
            self.say(copy.PIN_NEW)
        elif choice == "help":
            self.say(copy.HELP)
        else:
            self.say(copy.DIDNT_GET + "\n\n" + copy.MENU)

    on_new = on_logged_out = on_menu

    def show_balance(self) -> None:
        ws = wallets.list_for(self.uow, wallets.USER, self.user_id, self.livemode)
        self.say(copy.balance([(w.balance, w.currency, w.id) for w in ws]))

    def show_history(self, limit: int = 5) -> None:
        rows = []
        for w in wallets.list_for(self.uow, wallets.USER, self.user_id, self.livemode):
            for p in ledger.transactions(self.uow, w.id, limit=limit):
                rows.append((p.seq, p, w.currency))
        rows.sort(key=lambda r: r[0], reverse=True)
        self.say(copy.history([
            (p.created_at.strftime("%d %b"), p.amount, cur, copy.history_kind(p.kind, p.amount), p.obj_id)
            for _, p, cur in rows[:limit]
        ]))

    # --- amounts and currencies, shared by send and add ----------------------------------

    def read_amount(self, text: str) -> parse.AmountReading | None:
        """The amount (and currency, if typed with it), or None after saying what's wrong."""
        try:
            return parse.amount_and_currency(text)
        except InvalidInput as e:
            if e.code == "AMOUNT_TOO_SMALL":
                self.say(copy.AMOUNT_NOT_POSITIVE)
            elif e.code == "AMOUNT_TOO_LARGE":
                self.say(copy.AMOUNT_TOO_LARGE)
            elif parse.too_many_decimals(text):
                self.say(copy.AMOUNT_DECIMALS)
            else:
                self.say(copy.AMOUNT_FORMAT)
            return None

    # --- send money ----------------------------------------------------------------------

    def start_send(self, shortcut: parse.SendShortcut) -> None:
        """The send flow, from the menu or from `SEND 12.50 USD 0881234567`: whatever was
        given and is valid is kept, what was wrong is said, and the dialog asks for the
        rest (the number first if that was wrong, since that is what it just asked for)."""
        self.goto(S.SEND_AMOUNT)
        if shortcut.unknown_currency:
            self.say(copy.currency_unsupported(shortcut.unknown_currency))
        if shortcut.currency:
            self.keep(currency=shortcut.currency)
        recipient_ok = self.take_recipient(shortcut.recipient_text) if shortcut.recipient_text else None
        if shortcut.amount_text is not None:
            reading = self.read_amount(shortcut.amount_text)
            if reading is not None:
                self.keep(amount=reading.amount, currency=reading.currency or shortcut.currency)
        if recipient_ok is False:
            self.convo.state = S.SEND_RECIPIENT
            return
        self.next_send_step()

    def next_send_step(self) -> None:
        v = self.values
        if not v.get("amount"):
            self.convo.state = S.SEND_AMOUNT
            self.say(copy.SEND_AMOUNT)
        elif not v.get("currency"):
            self.convo.state = S.SEND_CURRENCY
            self.say(copy.CURRENCY_PROMPT)
        elif not v.get("to"):
            self.convo.state = S.SEND_RECIPIENT
            self.say(copy.send_recipient(v["amount"], v["currency"]))
        elif (have := self.balance_of(v["currency"])) < v["amount"]:
            # Said before the PIN is asked for (the transfer checks again when it runs).
            self.keep(amount=None)
            self.convo.state = S.SEND_AMOUNT
            self.say(copy.insufficient(v["currency"], have))
            self.say(copy.SEND_AMOUNT)
        else:
            self.keep(action=new_id("act"))
            self.convo.state = S.SEND_CONFIRM
            self.say(copy.send_confirm(v["amount"], v["currency"], v["label"]))

    def balance_of(self, currency: str) -> int:
        w = wallets.find_wallet(self.uow, wallets.USER, self.user_id, currency, self.livemode)
        return w.balance if w is not None else 0

    def take_recipient(self, text: str) -> bool:
        try:
            to = parse.liberian_phone(text)
        except parse.NotLiberian:
            self.say(copy.NUMBER_FOREIGN)
            return False
        except InvalidInput:
            self.say(copy.NUMBER_BAD)
            return False
        if to == self.phone:
            self.say(copy.NUMBER_SELF)
            return False
        if to == self.rt.settings.whatsapp_number:
            self.say(copy.NUMBER_SOXARA)
            return False
        self.keep(to=to, label=self.phone_label(to))
        return True

    def phone_label(self, phone: str) -> str:
        """How a counterparty reads in a confirmation: the number, and their name if known."""
        u = users.find_by_phone(self.uow, phone)
        # Cleaned again: rows stored before names were cleaned may hold anything.
        name = names.fit_to_show(u.profile_name, 30) if u else None
        return f"{phone} ({name})" if name else phone

    def on_send_amount(self, text: str) -> None:
        reading = self.read_amount(text)
        if reading is None:
            return
        self.keep(amount=reading.amount)
        if reading.currency:
            self.keep(currency=reading.currency)
        self.next_send_step()

    def on_send_currency(self, text: str) -> None:
        cur = parse.currency(text)
        if cur is None:
            self.say(copy.CURRENCY_PROMPT)
            return
        self.keep(currency=cur)
        self.next_send_step()

    def on_send_recipient(self, text: str) -> None:
        if self.take_recipient(text):
            self.next_send_step()

    def on_send_confirm(self, text: str) -> None:
        v = self.values
        answer = parse.yes_no(text)
        if answer is None:
            self.say(copy.YES_NO + "\n\n" + copy.send_confirm(v["amount"], v["currency"], v["label"]))
        elif answer:
            self.convo.state = S.SEND_PIN
            self.say(copy.send_pin(v["amount"], v["currency"], v["label"]))
        else:
            self.goto(S.MENU)
            self.say(copy.SEND_CANCELLED)
            self.say(copy.MENU)  # as after CANCEL: a next step, not a dead end

    def on_send_pin(self, text: str) -> None:
        if not self.pin_accepted(text):
            return
        v = self.values
        sender = transfers.Party("user", self.user_id, self.livemode)
        try:
            t = self.carry_out(lambda: transfers.send(
                self.uow, self.rt, sender=sender, amount=v["amount"], currency=v["currency"],
                to_phone=v["to"]))
        except InsufficientFunds:
            self.goto(S.MENU)
            self.say(copy.insufficient(v["currency"], self.balance_of(v["currency"])))
            self.say(copy.MENU)
            return
        except SoxaraError as e:
            self.goto(S.MENU)
            self.say(self.refusal(e))
            return
        self.goto(S.MENU)
        if t is None:
            self.say(copy.ALREADY_DONE)
        elif t.status == "pending_claim":
            days = max(1, self.rt.settings.claim_window_hours // 24)
            self.say(copy.send_pending_claim(t.amount, t.currency, v["label"], days, t.id))
        else:
            self.say(copy.send_done(t.amount, t.currency, v["label"], t.id))

    # --- PIN checks and carrying out a confirmed action ----------------------------------

    def pin_accepted(self, text: str) -> bool:
        """Core's verdict on the PIN typed at a confirmation step; says what went wrong."""
        pin = parse.pin(text)
        if pin is None:
            self.say(copy.PIN_FORMAT)
            self.prompt()
            return False
        check = services.check_pin(self.uow, self.user_id, pin)
        if check.ok:
            return True
        if check.not_set:
            self.goto(S.PIN_CHOOSE)
            self.say(copy.PIN_NOT_SET + "\n" + copy.PIN_CHOOSE)
        elif check.locked:
            self.goto(S.MENU)
            self.say(copy.pin_locked(check.locked_for))
            self.say(copy.MENU)
        else:
            self.say(copy.pin_wrong(check.tries_left))
        return False

    def carry_out(self, action):
        """Run a confirmed money action at most once for its pending-action id.

        It runs in a savepoint: a refusal (insufficient funds…) undoes whatever it began
        while the message, the dialog's move and the PIN check still commit.
        """
        action_id = self.values.get("action")
        if not action_id:
            raise InvalidState("no pending action")
        with self.uow.savepoint():
            if not conversations.claim_pending_action(self.uow, self.user_id, action_id, self.now):
                return None
            return action()

    def refusal(self, e: SoxaraError) -> str:
        if isinstance(e, InvalidInput) and "yourself" in e.message:
            return copy.NUMBER_SELF
        if e.code in ("UPSTREAM_ERROR", "SERVICE_UNAVAILABLE"):
            return copy.UNAVAILABLE
        return copy.refused(e.message)

    def sender_label(self, t) -> str:
        return transfers.sender_label(self.uow, t)

    # --- add money -----------------------------------------------------------------------

    def on_add_amount(self, text: str) -> None:
        reading = self.read_amount(text)
        if reading is None:
            return
        self.keep(amount=reading.amount)
        if reading.currency:
            self.keep(currency=reading.currency)
        self.next_add_step()

    def next_add_step(self) -> None:
        v = self.values
        if not v.get("currency"):
            self.convo.state = S.ADD_CURRENCY
            self.say(copy.CURRENCY_PROMPT)
        elif not v.get("method"):
            self.convo.state = S.ADD_METHOD
            self.say(copy.add_method(v["amount"], v["currency"]))
        elif not v.get("pay_phone"):
            self.convo.state = S.ADD_PHONE
            self.say(copy.add_phone(v["method"], self.phone))
        else:
            self.keep(action=new_id("act"))
            self.convo.state = S.ADD_CONFIRM
            self.say(copy.add_confirm(v["amount"], v["currency"], v["method"], v["pay_phone"]))

    def on_add_currency(self, text: str) -> None:
        cur = parse.currency(text)
        if cur is None:
            self.say(copy.CURRENCY_PROMPT)
            return
        self.keep(currency=cur)
        self.next_add_step()

    def on_add_method(self, text: str) -> None:
        t = text.strip().upper()
        method = {"1": "mtn_momo", "MTN": "mtn_momo", "MOMO": "mtn_momo", "MTN MOMO": "mtn_momo",
                  "2": "orange_money", "ORANGE": "orange_money", "ORANGE MONEY": "orange_money"}.get(t)
        if method is None:
            self.say(copy.METHOD_PROMPT)
            return
        self.keep(method=method)
        self.next_add_step()

    def on_add_phone(self, text: str) -> None:
        try:
            pay = parse.liberian_phone(self.phone if text.strip() == "1" else text)
        except parse.NotLiberian:
            self.say(copy.MOMO_FOREIGN)
            return
        except InvalidInput:
            self.say(copy.NUMBER_BAD)
            return
        self.keep(pay_phone=pay)
        self.next_add_step()

    def on_add_confirm(self, text: str) -> None:
        v = self.values
        answer = parse.yes_no(text)
        if answer is None:
            self.say(copy.YES_NO + "\n\n" + copy.add_confirm(v["amount"], v["currency"], v["method"], v["pay_phone"]))
        elif answer:
            self.convo.state = S.ADD_PIN
            self.say(copy.add_pin(v["amount"], v["currency"], v["method"], v["pay_phone"]))
        else:
            self.goto(S.MENU)
            self.say(copy.ADD_CANCELLED)
            self.say(copy.MENU)

    def on_add_pin(self, text: str) -> None:
        if not self.pin_accepted(text):
            return
        from core.wallets import deposits

        v = self.values
        try:
            d = self.carry_out(lambda: deposits.create(
                self.uow, self.rt, user_id=self.user_id, amount=v["amount"], currency=v["currency"],
                method=v["method"], phone_number=v["pay_phone"], livemode=self.livemode))
        except SoxaraError as e:
            self.goto(S.MENU)
            self.say(self.refusal(e))
            return
        self.goto(S.MENU)
        if d is None:
            self.say(copy.ALREADY_DONE)
        else:
            self.say(copy.add_started(d.amount, d.currency, d.method, d.phone_number, d.id))

    # --- claim ---------------------------------------------------------------------------

    def offer_claims(self) -> bool:
        """Offer the money waiting for this number, if any (the login proved the phone, so
        one YES claims it: no code needed)."""
        waiting = claims.pending_claims_for(self.uow, self.phone, self.livemode)[:5]
        if not waiting:
            return False
        self.goto(S.CLAIM_OFFER, offer=[t.id for t in waiting])
        self.say(copy.claim_offer([(t.amount, t.currency, self.sender_label(t), t.id) for t in waiting]))
        return True

    def on_claim_offer(self, text: str) -> None:
        answer = parse.yes_no(text)
        if answer is None:
            self.say(copy.YES_NO)
            return
        offer = self.values.get("offer") or []
        self.goto(S.MENU)
        if not answer:
            self.say(copy.CLAIM_LATER)
            return
        for transfer_id in offer:
            # Each on its own: one that expired meanwhile does not stop the others.
            self.claim_with(lambda tid=transfer_id: claims.claim_for_recipient(
                self.uow, self.rt, user_id=self.user_id, livemode=self.livemode, transfer_id=tid))

    def claim(self, code: str | None) -> None:
        """`CLAIM <code>`: money sent to this number moves in. Claiming takes nothing from
        anyone the person could lose, so the code (which only this phone received) and the
        login are the whole check: no PIN."""
        if not code:
            self.goto(S.CLAIM_CODE)
            self.say(copy.CLAIM_ASK)
            return
        outcome = self.claim_with(lambda: claims.claim(
            self.uow, self.rt, user_id=self.user_id, livemode=self.livemode, claim_code=code))
        # A code that matches nothing may be a typo: the next message is another try.
        self.goto(S.CLAIM_CODE if outcome == "not_found" else S.MENU)

    def claim_with(self, claiming) -> str:
        """Run one claim in a savepoint: "claimed", "not_found" or "refused", having said
        why core refused. core.wallets.transfers itself tells the person ("You claimed $12.50 …
        Ref tr_…") and the sender."""
        try:
            with self.uow.savepoint():
                claiming()
        except SoxaraError as e:
            if isinstance(e, NotFound):
                self.say(copy.CLAIM_NOT_FOUND)
                return "not_found"
            if e.code == "CLAIM_EXPIRED":
                self.say(copy.CLAIM_EXPIRED)
            elif isinstance(e, InvalidState):
                self.say(copy.CLAIM_ALREADY)
            else:
                self.say(self.refusal(e))
            return "refused"
        return "claimed"

    def on_claim_code(self, text: str) -> None:
        code = text.strip().split()[-1] if text.strip() else ""
        if not code or len(code) > 40:
            self.say(copy.CLAIM_ASK)
            return
        self.claim(code)

    # --- change PIN ----------------------------------------------------------------------

    def on_pin_change_new(self, text: str) -> None:
        pin = parse.pin(text)
        if pin is None:
            self.say(copy.PIN_FORMAT)
            return
        self.goto(S.PIN_CHANGE_REPEAT, first=self.seal(pin))
        self.say(copy.PIN_REPEAT)

    def on_pin_change_repeat(self, text: str) -> None:
        pin = parse.pin(text)
        if pin is None:
            self.say(copy.PIN_FORMAT)
            return
        if pin != self.unseal(self.values.get("first")):
            self.goto(S.PIN_CHANGE_NEW)
            self.say(copy.PIN_MISMATCH)
            return
        self.convo.state = S.PIN_CHANGE_CURRENT
        self.say(copy.PIN_CURRENT_TO_APPROVE)

    def on_pin_change_current(self, text: str) -> None:
        current = parse.pin(text)
        if current is None:
            self.say(copy.PIN_FORMAT)
            return
        new = self.unseal(self.values.get("first"))
        if new is None:
            self.goto(S.PIN_CHANGE_NEW)
            self.say(copy.PIN_NEW)
            return
        check = services.check_pin(self.uow, self.user_id, current)
        if not check.ok:
            if check.locked:
                self.goto(S.MENU)
                self.say(copy.pin_locked(check.locked_for))
            else:
                self.say(copy.pin_wrong(check.tries_left))
            return
        try:
            services.set_pin(self.uow, self.user_id, new, current_pin=current)
        except InvalidInput as e:
            self.goto(S.PIN_CHANGE_NEW)
            self.say(copy.pin_rejected(e.message))
            return
        self.goto(S.MENU)
        self.say(copy.PIN_CHANGED)
