"""WhatsApp conversations: each phone's dialog state, and the transcript support reads.

A conversation is one row per phone. The bot locks it while it advances the dialog, so
two messages from one phone are handled one after the other whichever web process
takes them, and any process can take the next one: nothing lives in memory.

The transcript keeps every message, masked *before* it is stored. Inbound messages are
stored here: a PIN or OTP typed in reply to the step that asked for it, and anything
that looks like a card number, never reach the table in clear. Their `MessageSid` is
unique, which is how a redelivered message is recognised and left alone. Outbound
messages are core.messaging's outbox, which masks the secrets it is told about.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UnitOfWork, UTCDateTime, utcnow
from core.ids import new_id
from core.luhn import luhn_ok

MASK = "••••"
# Longest body the transcript keeps; WhatsApp allows 4,096 characters, support needs less.
TRANSCRIPT_MAX = 2000
# 13–19 digits, optionally in groups split by up to two spaces, tabs, dots or dashes, not
# part of a longer number and not an E.164 phone number (which starts with "+"). Only a
# run that passes the Luhn check is a card, as every real card number does: an amount
# beside a phone number ("SEND 100 0886200002") mostly stays readable for support.
_CARD_RUN = re.compile(r"(?<![\d+])(?:\d[ \t.-]{0,2}){12,18}\d(?!\d)")
# A PIN or login code inside other text ("my pin is 4821", "4821.", "884 208").
_SECRET_TOKEN = re.compile(r"(?<![\d•])(?:\d{4,8}|\d{3} \d{3})(?!\d)")
_CLAIM_CODE = re.compile(r"(?i)^(\s*CLAIM\s+)\S+")
# SQLite only autoincrements an INTEGER PRIMARY KEY; PostgreSQL wants 64 bits.
Seq = BigInteger().with_variant(Integer(), "sqlite")
_PIN_LIKE = re.compile(r"^\s*\d{4,8}\s*$")


class Conversation(Base):
    """The dialog with one phone: where it stands and what it is in the middle of."""

    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # cnv_…
    phone_number: Mapped[str] = mapped_column(String(20), unique=True)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True, index=True)
    state: Mapped[str] = mapped_column(String(40))
    # The step's working data as JSON: the amount being sent, the pending action's id…
    data: Mapped[str] = mapped_column(Text, default="{}")
    # A login in the chat lasts while the person keeps talking (see bot/dialog.py).
    session_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def values(self) -> dict:
        return json.loads(self.data or "{}")

    def set_values(self, values: dict) -> None:
        self.data = json.dumps(values, separators=(",", ":"), sort_keys=True)

    def logged_in(self, now: datetime) -> bool:
        return bool(self.user_id and self.session_expires_at and self.session_expires_at > now)


class InboundMessage(Base):
    """One message a person sent, as support may read it (already masked).

    The outbound half of a transcript is core.messaging's outbox, masked there; the
    `transcript` function below reads both.
    """

    __tablename__ = "inbound_messages"
    __table_args__ = (Index("ix_inbound_messages_conversation", "conversation_id", "seq"),)

    # Arrival order: ids made in the same millisecond do not sort.
    seq: Mapped[int] = mapped_column(Seq, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"))
    # Twilio's id for the message: unique, so a redelivery cannot be stored (or handled) twice.
    message_sid: Mapped[str] = mapped_column(String(64), unique=True)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- masking -----------------------------------------------------------------------------


def mask_cards(text: str) -> str:
    """Anything shaped like a card number becomes `••••4242` (the last four, as receipts do)."""

    def repl(m: re.Match) -> str:
        digits = re.sub(r"\D", "", m.group(0))
        return MASK + digits[-4:] if luhn_ok(digits) else m.group(0)

    return _CARD_RUN.sub(repl, text)


def mask_inbound(body: str, *, expects_secret: bool, keywords: frozenset[str] = frozenset(),
                 numbers_expected: bool = False, command: bool = False) -> str:
    """The transcript copy of what a person typed.

    `expects_secret`: the step asked for a PIN or an OTP, so the reply is one (unless it
    is a keyword such as CANCEL, or a command, kept so support can follow the
    conversation). `command`: a SEND or CLAIM command, whose numbers are an amount and a
    phone (a claim's code is masked). Otherwise every 4–8 digit number in the message is
    masked unless the step expects a number (an amount): a PIN sent twice, typed a step
    late or inside a sentence, is still a PIN.
    """
    text = body or ""
    if command:
        return _clip(mask_cards(_CLAIM_CODE.sub(lambda m: m.group(1) + MASK, text)))
    if expects_secret:
        return text.strip() if text.strip().upper() in keywords else MASK
    if _PIN_LIKE.match(text) and not numbers_expected:
        return MASK
    text = mask_cards(text)
    return _clip(text if numbers_expected else _SECRET_TOKEN.sub(MASK, text))


def _clip(text: str) -> str:
    return text if len(text) <= TRANSCRIPT_MAX else text[: TRANSCRIPT_MAX - 1] + "…"


# --- the conversation row ----------------------------------------------------------------


def lock(uow: UnitOfWork, phone_e164: str, initial_state: str) -> tuple[Conversation, bool]:
    """The phone's conversation, row-locked for the rest of the transaction.

    Returns (conversation, created). A first message from two processes at once races
    on the unique phone number; the loser takes the winner's row.
    """
    s = uow.session
    q = select(Conversation).where(Conversation.phone_number == phone_e164).with_for_update()
    convo = s.scalar(q)
    if convo is not None:
        return convo, False
    now = utcnow()
    convo = Conversation(id=new_id("cnv"), phone_number=phone_e164, state=initial_state,
                         data="{}", created_at=now, updated_at=now)
    try:
        with s.begin_nested():
            s.add(convo)
    except IntegrityError:
        convo = s.scalar(q.execution_options(populate_existing=True))
        assert convo is not None
        return convo, False
    return convo, True


def find(uow: UnitOfWork, phone_e164: str) -> Conversation | None:
    return uow.session.scalar(select(Conversation).where(Conversation.phone_number == phone_e164))


def record_inbound(uow: UnitOfWork, convo: Conversation, message_sid: str, masked_body: str,
                   now: datetime | None = None) -> bool:
    """Store an inbound message (already masked). False if this MessageSid was seen before.

    One statement either way (INSERT … ON CONFLICT DO NOTHING): a redelivery costs no
    savepoint, and two copies racing are decided by the unique index.
    """
    dialect = uow.session.get_bind().dialect.name
    values = dict(conversation_id=convo.id, message_sid=message_sid[:64], body=masked_body,
                  created_at=now or utcnow())
    # Both dialects' Insert have on_conflict_do_nothing; they share no base type that says so.
    insert = pg_insert(InboundMessage) if dialect == "postgresql" else sqlite_insert(InboundMessage)
    stmt = (insert.values(**values)
            .on_conflict_do_nothing(index_elements=["message_sid"])
            .returning(InboundMessage.seq))
    return uow.session.execute(stmt).first() is not None


def seen(uow: UnitOfWork, message_sid: str) -> bool:
    return uow.session.scalar(
        select(InboundMessage.seq).where(InboundMessage.message_sid == message_sid[:64])
    ) is not None


@dataclass(frozen=True)
class TranscriptLine:
    direction: str  # in | out
    body: str
    created_at: datetime
    ref: str  # the MessageSid of an inbound message, the msg_… id of an outbound one


def transcript(uow: UnitOfWork, phone_e164: str, *, limit: int = 100) -> list[TranscriptLine]:
    """The newest `limit` lines of a phone's conversation, both ways, oldest first.

    Everything here was masked before it was stored: inbound by this module, outbound
    by core.messaging (whose outbox holds what the bot and core said to the phone).
    """
    from core.messaging.outbox import OutboundMessage

    s = uow.session
    convo = find(uow, phone_e164)
    lines: list[tuple] = []
    if convo is not None:
        for m in s.scalars(select(InboundMessage).where(InboundMessage.conversation_id == convo.id)
                           .order_by(InboundMessage.seq.desc()).limit(limit)):
            # An inbound message is answered after it arrives: at the same instant it sorts first.
            lines.append((m.created_at, 0, m.seq, TranscriptLine("in", m.body, m.created_at, m.message_sid)))
    for o in s.scalars(select(OutboundMessage).where(OutboundMessage.to_phone == phone_e164)
                       .order_by(OutboundMessage.seq.desc()).limit(limit)):
        lines.append((o.created_at, 1, o.seq, TranscriptLine("out", o.body, o.created_at, o.id)))
    lines.sort(key=lambda t: t[:3])
    return [t[3] for t in lines[-limit:]]


def idle_for(convo: Conversation, now: datetime) -> timedelta | None:
    if convo.last_inbound_at is None:
        return None
    return now - convo.last_inbound_at

