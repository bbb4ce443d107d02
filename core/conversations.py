"""WhatsApp conversations: each phone's dialog state, and the transcript support reads.

A conversation is one row per phone. The bot locks it while it advances the dialog, so
two messages from one phone are handled one after the other whichever web process
takes them, and any process can take the next one: nothing lives in memory.

The transcript keeps every inbound and outbound message, masked *before* it is stored:
a PIN or OTP typed in reply to the step that asked for it, and anything that looks like
a card number, never reach the table in clear. An inbound message's `MessageSid` is
unique here, which is how a redelivered message is recognised and left alone.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, UnitOfWork, UTCDateTime, utcnow
from core.idempotency import LIFETIME, IdempotencyRecord
from core.ids import new_id, random_string

MASK = "••••"
# Longest body the transcript keeps; WhatsApp allows 4,096 characters, support needs less.
TRANSCRIPT_MAX = 2000
# 13–19 digits, optionally in groups split by single spaces or dashes, not part of a longer
# number and not an E.164 phone number (which starts with "+" and has at most 15 digits).
_CARD_RUN = re.compile(r"(?<![\d+])(?:\d[ -]?){12,18}\d(?!\d)")
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


class TranscriptMessage(Base):
    """One message of a conversation, as support may read it (already masked)."""

    __tablename__ = "conversation_messages"
    __table_args__ = (Index("ix_conversation_messages_conversation", "conversation_id", "seq"),)

    # Insertion order: replies written in one transaction keep the order they were said.
    seq: Mapped[int] = mapped_column(Seq, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"))
    direction: Mapped[str] = mapped_column(String(3))  # in | out
    body: Mapped[str] = mapped_column(Text)
    # Twilio's id of an inbound message: unique, so a redelivery cannot be stored twice.
    message_sid: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    # The outbound message (core/messaging.py) this line stands for, if any.
    outbound_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- masking -----------------------------------------------------------------------------


def mask_cards(text: str) -> str:
    """Anything shaped like a card number becomes `••••4242` (the last four, as receipts do)."""

    def repl(m: re.Match) -> str:
        digits = re.sub(r"\D", "", m.group(0))
        return MASK + digits[-4:]

    return _CARD_RUN.sub(repl, text)


def mask_inbound(body: str, *, expects_secret: bool, keywords: frozenset[str] = frozenset(),
                 numbers_expected: bool = False) -> str:
    """The transcript copy of what a person typed.

    `expects_secret`: the step asked for a PIN or an OTP, so the reply is one (unless it
    is a keyword such as CANCEL, kept so support can follow the conversation).
    Outside such steps a bare 4–8 digit message is masked too unless the step expects a
    number (an amount): a PIN sent twice, or typed a step late, is still a PIN.
    """
    text = body or ""
    if expects_secret:
        return text.strip() if text.strip().upper() in keywords else MASK
    if _PIN_LIKE.match(text) and not numbers_expected:
        return MASK
    return _clip(mask_cards(text))


def mask_outbound(body: str) -> str:
    return _clip(mask_cards(body or ""))


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
    """Store an inbound message (already masked). False if this MessageSid was seen before."""
    s = uow.session
    line = TranscriptMessage(conversation_id=convo.id, direction="in",
                             body=masked_body, message_sid=message_sid[:64],
                             created_at=now or utcnow())
    try:
        with s.begin_nested():
            s.add(line)
    except IntegrityError:
        return False
    return True


def seen(uow: UnitOfWork, message_sid: str) -> bool:
    return uow.session.scalar(
        select(TranscriptMessage.seq).where(TranscriptMessage.message_sid == message_sid[:64])
    ) is not None


def record_outbound(uow: UnitOfWork, phone_e164: str, body: str, *,
                    outbound_id: str | None = None, initial_state: str = "new") -> TranscriptMessage:
    """Add an outbound message to the phone's transcript, masked. Creates the conversation
    if this is the first thing ever said to the phone (a claim link to a new number)."""
    s = uow.session
    convo = find(uow, phone_e164)
    if convo is None:
        convo, _ = lock(uow, phone_e164, initial_state)
    line = TranscriptMessage(conversation_id=convo.id, direction="out",
                             body=mask_outbound(body), outbound_id=outbound_id,
                             created_at=utcnow())
    s.add(line)
    s.flush()
    return line


def transcript(uow: UnitOfWork, phone_e164: str, *, limit: int = 100) -> list[TranscriptMessage]:
    """The newest `limit` lines of a phone's conversation, oldest first."""
    convo = find(uow, phone_e164)
    if convo is None:
        return []
    rows = uow.session.scalars(
        select(TranscriptMessage).where(TranscriptMessage.conversation_id == convo.id)
        .order_by(TranscriptMessage.seq.desc()).limit(limit)
    )
    return list(reversed(list(rows)))


def idle_for(convo: Conversation, now: datetime) -> timedelta | None:
    if convo.last_inbound_at is None:
        return None
    return now - convo.last_inbound_at


def claim_pending_action(uow: UnitOfWork, user_id: str, action_id: str,
                         now: datetime | None = None) -> bool:
    """Mark a confirmed action (a send, a deposit) as carried out; False if it already was.

    The key is the pending action's id, minted when the confirmation was shown, never
    the MessageSid: a PIN message delivered twice is two messages but one action. The
    record lives in the idempotency table under the scope `bot:<user>`, written in the
    caller's transaction, so it commits together with the money it guards or not at all.
    """
    now = now or utcnow()
    rec = IdempotencyRecord(scope=f"bot:{user_id}", key=action_id, fingerprint="bot-action",
                            attempt=random_string(32), status="done", response_status=200,
                            response_sealed=None, created_at=now, expires_at=now + LIFETIME)
    try:
        with uow.session.begin_nested():
            uow.session.add(rec)
    except IntegrityError:
        return False
    return True
