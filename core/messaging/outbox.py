"""Outbound WhatsApp messages: stored with the change that caused them, sent by a worker.

`send_whatsapp` writes the message in the caller's transaction and asks for delivery
only after that transaction commits, so nobody is ever told about something that was
rolled back. A worker then hands the message to the transport (transports.py: Twilio,
or the sandbox, which sends nothing: its stored rows are the sandbox outbox that
`/dev/messages` lists).

Secrets in messages. A message may have to carry a secret (a login code). The `body`
column is the transcript support reads, so it holds the text with each `sensitive`
value replaced by a mask. The real text exists only sealed (Fernet, under a key derived
from SOXARA_SECRET_KEY) in `sealed_body`, which the worker opens to send and wipes as
soon as the provider has it. The sandbox transport's "phone" is the outbox itself, so
it keeps the sealed copy for `REVEAL_WINDOW` (what a developer's test phone would show)
before the same wipe.

Order. Messages to one phone go out in the order they were written (`seq`): delivery
walks a phone's pending messages oldest first under row locks, and stops at the first
one that fails, so a later message never overtakes an earlier one that is being retried.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    select,
    text,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.crypto import Sealer
from core.db import Base, Seq, Statement, UnitOfWork, UTCDateTime, rowcount, utcnow
from core.ids import new_id
from core.jobs import DELIVER_MESSAGE, enqueue_after_commit
from core.messaging.transports import MessageTransport, TransportError
from core.phones import normalise_e164
from core.retry import Backoff

log = logging.getLogger("soxara.messages")

MASK = "••••"  # fixed width: a mask must not tell how long the secret was
MAX_BODY = 4096  # WhatsApp's limit for one message
# A new message is sent by its own job at once; the sweep only takes it over if that job
# has not managed to within this long (the job was lost, or the process died).
GRACE = timedelta(seconds=10)
# Waits after the 1st, 2nd… failed attempt; after the last one the message is given up.
RETRY = Backoff((5, 30, 120, 600, 1800))
MAX_ATTEMPTS = RETRY.max_attempts
REVEAL_WINDOW = timedelta(minutes=15)



class OutboundMessage(Base):
    __tablename__ = "outbound_messages"
    __table_args__ = (
        Index("ix_outbound_messages_to_phone", "to_phone", "seq"),
        Index("ix_outbound_messages_next_attempt_at", "next_attempt_at"),
        # The few rows still holding a sealed text, for the sweep that wipes them: without
        # it the sweep would read every delivered message, every second.
        Index("ix_outbound_messages_sealed", "created_at", postgresql_where=text("sealed_body IS NOT NULL"),
              sqlite_where=text("sealed_body IS NOT NULL")),
    )

    # Write order, which is delivery order: ids made in the same millisecond do not sort.
    seq: Mapped[int] = mapped_column(Seq, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40), unique=True)  # msg_…
    to_phone: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(16), default="whatsapp")
    # The transcript: sensitive values already masked. Never holds a secret.
    body: Mapped[str] = mapped_column(Text)
    # The text to send when it differs from `body`; sealed, and wiped once delivered.
    sealed_body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    status: Mapped[str] = mapped_column(String(10))  # queued | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When a worker should (re)try; NULL once sent or given up.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    provider_sid: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error: Mapped[str | None] = mapped_column(String(300), nullable=True)


def mask(body: str, sensitive: list[str] | None) -> str:
    """The transcript copy of `body`: every occurrence of each sensitive value masked."""
    masked = body
    for secret in sensitive or []:
        if not secret:
            raise ValueError("an empty sensitive value masks nothing")
        if secret not in body:
            # The caller believes a secret is being masked; it is not in the text as given
            # (formatted differently?), so it would not be, wherever else it appears.
            raise ValueError("a sensitive value does not appear in the message body")
        masked = masked.replace(secret, MASK)
    return masked


@dataclass(frozen=True)
class QueuedMessage:
    """A message as `send_whatsapp` wrote it: plain data, since the row goes with the
    transaction's next statement (a hot statement) and the session does not hold it. Its
    `seq` is the database's, known only once written."""

    id: str
    to_phone: str
    channel: str
    body: str
    sealed_body: bytes | None
    status: str
    attempts: int
    next_attempt_at: datetime
    created_at: datetime


_QUEUE = Statement(
    "INSERT INTO outbound_messages (id, to_phone, channel, body, sealed_body, status, attempts, "
    "next_attempt_at, created_at) VALUES (:id, :to_phone, :channel, :body, :sealed_body, :status, "
    ":attempts, :next_attempt_at, :created_at)", next_attempt_at=UTCDateTime(), created_at=UTCDateTime(),
    sealed_body=LargeBinary())


def send_whatsapp(uow: UnitOfWork, rt, to_phone: str, body: str, *,
                  sensitive: list[str] | None = None, now: datetime | None = None) -> QueuedMessage:
    """Send `body` to the WhatsApp number `to_phone` (E.164) once this transaction commits.

    `sensitive`: values inside `body` (a code, a PIN) that the transcript must not keep;
    they reach the phone but are stored only masked, and sealed until sent.
    """
    if not body:
        raise ValueError("a message needs a body")
    if len(body) > MAX_BODY:
        raise ValueError(f"WhatsApp messages are at most {MAX_BODY} characters")
    now = now or utcnow()
    masked = mask(body, sensitive)
    msg = QueuedMessage(
        id=new_id("msg"), to_phone=normalise_e164(to_phone), channel="whatsapp", body=masked,
        sealed_body=Sealer(rt.secret_key).seal(body.encode()) if masked != body else None,
        status="queued", attempts=0, next_attempt_at=now + GRACE, created_at=now,
    )
    uow.defer(_QUEUE, dict(vars(msg)))
    enqueue_after_commit(uow, rt.jobs, DELIVER_MESSAGE, msg.id)
    return msg


# A phone's pending messages, oldest first, locked; `waiting`: still in the backoff of a
# failed try. Found by phone (the sweep), or by the ids of up to DELIVER_BATCH messages
# (their jobs): each of their phones' pending messages up to the newest of them. Locks
# are taken in `seq` order by every reader, so two deliveries never deadlock.
DELIVER_BATCH = 32
_PENDING_COLUMNS = "m.seq, m.to_phone, m.body, m.sealed_body, m.attempts, m.next_attempt_at > :now AS waiting"
_PENDING = Statement(
    f"SELECT {_PENDING_COLUMNS} FROM outbound_messages m "
    "WHERE m.to_phone = :to_phone AND m.next_attempt_at IS NOT NULL ORDER BY m.seq",
    lock="FOR UPDATE", now=UTCDateTime())
# A fixed number of id slots (unused ones NULL), so that one prepared statement serves any
# batch on PostgreSQL and the same SQL runs on SQLite.
_ID_SLOTS = [f"id{i}" for i in range(DELIVER_BATCH)]
_PENDING_UP_TO = Statement(
    f"SELECT {_PENDING_COLUMNS} FROM outbound_messages m JOIN ("
    " SELECT to_phone, MAX(seq) AS last_seq FROM outbound_messages"
    f" WHERE id IN ({', '.join(':' + slot for slot in _ID_SLOTS)}) AND next_attempt_at IS NOT NULL"
    " GROUP BY to_phone) last ON m.to_phone = last.to_phone AND m.seq <= last.last_seq "
    "WHERE m.next_attempt_at IS NOT NULL ORDER BY m.seq", lock="FOR UPDATE OF m", now=UTCDateTime())
_SETTLE = Statement(
    "UPDATE outbound_messages SET attempts = :attempts, status = :status, sent_at = :sent_at, "
    "provider_sid = :provider_sid, error = :error, next_attempt_at = :next_attempt_at, "
    "sealed_body = :sealed_body WHERE seq = :seq",
    sent_at=UTCDateTime(), next_attempt_at=UTCDateTime(), sealed_body=LargeBinary())


def get(uow: UnitOfWork, message_id: str) -> OutboundMessage | None:
    return uow.session.scalar(select(OutboundMessage).where(OutboundMessage.id == message_id))


def deliver_up_to(uow: UnitOfWork, secret_key: str, transport: MessageTransport, message_ids: list[str],
                  *, now: datetime | None = None) -> int:
    """Send the messages `message_ids` (at most DELIVER_BATCH) and their phones' older
    pending ones, each phone's oldest first; the count sent (0 when they were sent
    already: a job run twice sends nothing twice).

    Holds row locks on what it sends until the caller commits, so two workers never
    send one message twice. A phone's messages stop at its first failure (scheduling
    its retry) and at its first message still waiting out its backoff: later messages
    to that phone wait behind it; other phones' go on.
    """
    if not 0 < len(message_ids) <= DELIVER_BATCH:
        raise ValueError(f"deliver 1 to {DELIVER_BATCH} messages at a time")
    now = now or utcnow()
    slots = dict(zip(_ID_SLOTS, [*message_ids, *[None] * (DELIVER_BATCH - len(message_ids))], strict=True))
    return _send_rows(uow, secret_key, transport, uow.run(_PENDING_UP_TO, {**slots, "now": now}), now)


def deliver_pending(uow: UnitOfWork, secret_key: str, transport: MessageTransport, to_phone: str,
                    *, now: datetime | None = None) -> int:
    """The sweep's delivery: the phone's pending messages, as `deliver_up_to` sends them;
    the count sent. Gives up at once if another worker holds the phone's oldest message.
    """
    now = now or utcnow()
    s = uow.session
    pending = select(OutboundMessage.seq).where(
        OutboundMessage.to_phone == to_phone, OutboundMessage.next_attempt_at.is_not(None)
    ).order_by(OutboundMessage.seq)
    # Whoever holds a phone's oldest pending message is delivering that phone. (Not
    # `pending.limit(1)` with SKIP LOCKED: that would lock the oldest *unlocked* one,
    # out of order, and deadlock with the worker holding the oldest.)
    oldest_seq = s.scalar(pending.limit(1))
    if oldest_seq is None or s.scalar(
        pending.where(OutboundMessage.seq == oldest_seq).with_for_update(skip_locked=True)
    ) is None:
        return 0
    # Locks are taken in `seq` order by everyone, so waiting here cannot deadlock.
    return _send_rows(uow, secret_key, transport, uow.run(_PENDING, {"to_phone": to_phone, "now": now}), now)


def _send_rows(uow: UnitOfWork, secret_key: str, transport: MessageTransport, rows: list, now: datetime) -> int:
    sealer = Sealer(secret_key)
    sent = 0
    held_back: set[str] = set()  # phones whose next message must wait for an earlier one
    for seq, to, body, sealed, attempts, waiting in rows:
        sealed = bytes(sealed) if sealed is not None else None
        if to in held_back:
            continue
        if attempts > 0 and waiting:
            held_back.add(to)
            continue
        outcome = {"seq": seq, "attempts": attempts + 1, "status": "sent", "sent_at": now, "provider_sid": None,
                   "error": None, "next_attempt_at": None, "sealed_body": sealed}
        real_text = body
        if sealed is not None:
            opened = sealer.open(sealed)
            if opened is None:
                # Sealed under another SOXARA_SECRET_KEY: the real text is gone for good.
                uow.defer(_SETTLE, _given_up(outcome, attempts, "the sealed text cannot be opened (secret key changed)"))
                continue
            real_text = opened.decode()
        try:
            sid = transport.send(to, real_text)
        except TransportError as e:
            error = str(e)[:300]
            retry_at = None if e.permanent else RETRY.next_attempt_at(attempts + 1, now)
            log.warning("message seq %s not sent (attempt %d): %s; %s", seq, attempts + 1, error,
                        f"next try at {retry_at:%H:%M:%S}" if retry_at else "given up")
            if retry_at is None:
                uow.defer(_SETTLE, _given_up(outcome, attempts + 1, error))
                continue
            uow.defer(_SETTLE, {**outcome, "status": "failed", "sent_at": None, "error": error,
                                "next_attempt_at": retry_at})
            held_back.add(to)
            continue
        outcome["provider_sid"] = sid[:64]
        if not transport.keeps_delivered_copy:
            outcome["sealed_body"] = None
        uow.defer(_SETTLE, outcome)
        sent += 1
    return sent


def _given_up(outcome: dict, attempts: int, error: str) -> dict:
    return {**outcome, "attempts": attempts, "status": "failed", "sent_at": None, "error": error[:300],
            "next_attempt_at": None, "sealed_body": None}


def phones_due(uow: UnitOfWork, now: datetime, limit: int = 100) -> list[str]:
    """Phones with a message whose (re)try is due: a lost job or a failed attempt."""
    q = (select(OutboundMessage.to_phone)
         .where(OutboundMessage.next_attempt_at <= now)
         .group_by(OutboundMessage.to_phone).limit(limit))
    return list(uow.session.scalars(q))


def forget_delivered_copies(uow: UnitOfWork, now: datetime) -> int:
    """Wipe the sealed text of messages delivered more than REVEAL_WINDOW ago (sandbox)."""
    res = uow.session.execute(
        update(OutboundMessage)
        .where(OutboundMessage.sealed_body.is_not(None), OutboundMessage.next_attempt_at.is_(None),
               OutboundMessage.created_at <= now - REVEAL_WINDOW)
        .values(sealed_body=None)
    )
    return rowcount(res)


@dataclass(frozen=True)
class OutboxItem:
    id: str
    to: str
    body: str
    status: str
    created_at: datetime


def outbox_for(uow: UnitOfWork, phone_e164: str, limit: int = 100, *,
               secret_key: str | None = None) -> list[OutboxItem]:
    """The newest `limit` messages to a phone, oldest first (the sandbox's `/dev/messages`).

    `body` is the transcript (secrets masked). With `secret_key`, a message whose sealed
    text is still held shows that instead: what the phone received. Only sandbox pages
    should pass it; production wipes the sealed text when it sends.
    """
    rows = uow.session.scalars(
        select(OutboundMessage).where(OutboundMessage.to_phone == phone_e164)
        .order_by(OutboundMessage.seq.desc()).limit(limit)
    ).all()
    sealer = Sealer(secret_key) if secret_key else None
    items = []
    for m in reversed(rows):
        body = m.body
        if sealer is not None and m.sealed_body is not None:
            opened = sealer.open(m.sealed_body)
            body = opened.decode() if opened is not None else body
        items.append(OutboxItem(id=m.id, to=m.to_phone, body=body, status=m.status,
                                created_at=m.created_at))
    return items
