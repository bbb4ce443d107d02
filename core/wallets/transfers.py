"""Transfers: money from a user or a merchant to any phone number.

If the number belongs to a user, the money arrives at once (`succeeded`). Otherwise it
waits in the claims-held account (`pending_claim`) while the number is sent a claim
link; the new user claims it (`claimed`), or at the end of the claim window it goes
back to the sender (`expired`): claims.py. A merchant's test-mode transfer completes by
itself after about ten seconds, so an integration can see the whole life of a transfer;
money a person sends always waits for its recipient (`claims_itself`).
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Boolean, Index, String, select
from sqlalchemy.orm import Mapped, mapped_column

from core import amounts, crypto, names
from core.amounts import format_amount
from core.db import Base, Statement, UnitOfWork, UTCDateTime, utcnow
from core.errors import InsufficientFunds, InvalidInput, NotFound
from core.events import events
from core.identity import users
from core.ids import new_id, random_string
from core.messaging import outbox
from core.wallets import ledger, wallets

CLAIM_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud, typed on a phone
CLAIM_CODE_LENGTH = 8
TEST_AUTO_CLAIM_AFTER = timedelta(seconds=10)


@dataclass(frozen=True)
class Party:
    """Who sends: a user (their own wallet) or a merchant (payouts from its wallet)."""

    kind: str  # "user" | "merchant"
    id: str
    livemode: bool


class Transfer(Base):
    __tablename__ = "transfers"
    __table_args__ = (
        Index("ix_transfers_sender", "sender_type", "sender_id", "id"),
        Index("ix_transfers_pending", "status", "claim_expires_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # tr_…
    livemode: Mapped[bool] = mapped_column(Boolean)
    sender_type: Mapped[str] = mapped_column(String(10))
    sender_id: Mapped[str] = mapped_column(String(40))
    sender_wallet_id: Mapped[str] = mapped_column(String(40))
    to_phone_number: Mapped[str] = mapped_column(String(20), index=True)
    recipient_user_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    note: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[str] = mapped_column(String(20))
    claim_code_hash: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    claim_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    auto_claim_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    succeeded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    expired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


@dataclass(frozen=True)
class SentTransfer:
    """A transfer as `send` wrote it: plain data, since the row is written by a hot
    statement and the session does not hold it. Change a transfer through the row
    (`claims.locked`), never through this."""

    id: str
    livemode: bool
    sender_type: str
    sender_id: str
    sender_wallet_id: str
    to_phone_number: str
    amount: int
    currency: str
    note: str | None
    status: str
    created_at: datetime
    recipient_user_id: str | None = None
    claim_code_hash: str | None = None
    claim_expires_at: datetime | None = None
    auto_claim_at: datetime | None = None
    succeeded_at: datetime | None = None
    claimed_at: datetime | None = None
    expired_at: datetime | None = None


_COLUMNS = ("id", "livemode", "sender_type", "sender_id", "sender_wallet_id", "to_phone_number",
            "recipient_user_id", "amount", "currency", "note", "status", "claim_code_hash",
            "claim_expires_at", "auto_claim_at", "created_at", "succeeded_at")
_TIMES: dict[str, Any] = {c: UTCDateTime() for c in ("claim_expires_at", "auto_claim_at", "created_at", "succeeded_at")}
_INSERT = Statement(
    f"INSERT INTO transfers ({', '.join(_COLUMNS)}) VALUES ({', '.join(':' + c for c in _COLUMNS)})", **_TIMES)
# Who sent it, as the recipient reads it (`_shown`): the sender's phone and name, or the
# merchant's name.
_LABEL = {"user": "(SELECT phone_number FROM users WHERE id = :sender_id), "
                  "(SELECT profile_name FROM users WHERE id = :sender_id)",
          "merchant": "(SELECT name FROM merchants WHERE id = :sender_id), NULL"}
_LABEL_OF = {kind: Statement(f"SELECT {label}") for kind, label in _LABEL.items()}
# Who takes part in a transfer, in one read: the sender's wallet, its balance and the
# sender's label; the recipient (a user already, or not) and their wallet.
_PARTIES = """SELECT
 s.id,
 s.balance,
 {label},
 r.id,
 (SELECT id FROM accounts WHERE owner_type = 'user' AND owner_id = r.id
   AND currency = :currency AND livemode = :livemode)
FROM (SELECT 1 AS one) o
 LEFT JOIN accounts s ON s.owner_type = :sender_type AND s.owner_id = :sender_id
   AND s.currency = :currency AND s.livemode = :livemode
 LEFT JOIN users r ON r.phone_number = :to_phone"""
_PARTIES_OF = {kind: Statement(_PARTIES.format(label=label)) for kind, label in _LABEL.items()}


def snapshot(t: Transfer | SentTransfer) -> dict:
    """The transfer as the outside world sees it (events carry this)."""
    return {
        "id": t.id, "object": "transfer", "livemode": t.livemode, "amount": t.amount,
        "currency": t.currency, "status": t.status, "to_phone_number": t.to_phone_number,
        "recipient": t.recipient_user_id, "sender": {"type": t.sender_type, "id": t.sender_id},
        "note": t.note, "claim_expires_at": events.iso(t.claim_expires_at),
        "created_at": events.iso(t.created_at), "claimed_at": events.iso(t.claimed_at),
        "expired_at": events.iso(t.expired_at),
    }


def record_events(uow: UnitOfWork, t: Transfer | SentTransfer, *types: str) -> None:
    """Record each of `types` for the transfer as it is now (one snapshot for all)."""
    state = snapshot(t)
    for type_ in types:
        events.record(uow, type_, object_type="transfer", object_id=t.id, snapshot=state, livemode=t.livemode,
                      merchant_id=t.sender_id if t.sender_type == "merchant" else None)


def hash_claim_code(rt, code: str) -> str:
    """How a claim code is stored and looked up: keyed, whatever its case or spaces."""
    return crypto.keyed_hash(rt.secret_key, "claim-code", code.strip().upper())


def claim_link(rt, code: str) -> str:
    """A wa.me link that opens the chat with Soxara with `CLAIM <code>` already typed."""
    number = rt.settings.whatsapp_number.lstrip("+")
    return f"https://wa.me/{number}?text={urllib.parse.quote('CLAIM ' + code)}"


def sender_label(uow: UnitOfWork, t: Transfer) -> str:
    """Who sent it, as the recipient reads it: the sender's phone and name, or the
    merchant's name."""
    label, name = uow.run(_LABEL_OF[t.sender_type], {"sender_id": t.sender_id})[0]
    if label is None:
        raise NotFound(f"no such {t.sender_type}")
    return _shown(t.sender_type, label, name)


def _shown(kind: str, label: str, name: str | None) -> str:
    """A sender as another person reads them: a user as the sender reads the recipient in
    a confirmation (`users.shown_as`), a merchant by its name, cleaned like every name
    shown to another person (one stored before names were cleaned may hold anything)."""
    if kind == "user":
        return users.shown_as(label, name)
    return names.fit_to_show(label) or "a Soxara merchant"


def claim_window(rt) -> str:
    """How long a pending transfer waits for its claim, as people say it: `7 days`,
    `36 hours`, `1 hour` (SOXARA_CLAIM_WINDOW_HOURS, whole days when it is whole days)."""
    hours = rt.settings.claim_window_hours
    if hours % 24 == 0:
        days = hours // 24
        return f"{days} day{'s' if days != 1 else ''}"
    return f"{hours} hour{'s' if hours != 1 else ''}"


def claims_itself(sender: Party) -> bool:
    """Whether a pending transfer from `sender` claims itself after TEST_AUTO_CLAIM_AFTER:
    only one a merchant sends with its test key, so an integration sees `transfer.claimed`
    without a phone (the docs' sandbox). Money a person sends waits for a real claim in
    every mode, so a newcomer trying the sandbox can claim it by hand."""
    return sender.kind == "merchant" and not sender.livemode


def send(uow: UnitOfWork, rt, *, sender: Party, amount: int, currency: str, to_phone: str,
         note: str | None = None, now: datetime | None = None) -> SentTransfer:
    """Send `amount` minor units of `currency` to the phone `to_phone` (E.164).

    Raises InsufficientFunds (nothing moves) or InvalidInput (sending to yourself).
    """
    now = now or utcnow()
    amounts.check_amount(amount)
    amounts.check_currency(currency)
    if to_phone == rt.settings.whatsapp_number:
        # Nobody can log in as the bot's own number: the money would wait out the claim window.
        raise InvalidInput("that is Soxara's own WhatsApp number, not a person's", field="to_phone_number")
    src_id, balance, label, name, recipient_id, dst_id = uow.run(_PARTIES_OF[sender.kind], {
        "sender_type": sender.kind, "sender_id": sender.id, "currency": currency,
        "livemode": sender.livemode, "to_phone": to_phone})[0]
    if label is None:
        raise NotFound(f"no such {sender.kind}")
    label = _shown(sender.kind, label, name)
    if sender.kind == "user" and recipient_id == sender.id:
        raise InvalidInput("you cannot send money to yourself", field="to_phone_number")
    if (balance or 0) < amount:
        # Refused before anything is written. The ledger's constraint stays the rule: a
        # concurrent transfer that spends the money first makes this one fail there.
        raise InsufficientFunds("insufficient funds")
    if src_id is None:  # a first transfer in this currency: the wallet is made now
        src_id = wallets.wallet_for(uow, sender.kind, sender.id, currency, sender.livemode).id
    new = {"id": new_id("tr"), "livemode": sender.livemode, "sender_type": sender.kind,
           "sender_id": sender.id, "sender_wallet_id": src_id, "to_phone_number": to_phone,
           "amount": amount, "currency": currency, "note": (note or None) and note[:200], "created_at": now}
    money = format_amount(amount, currency)
    if recipient_id is not None:
        if dst_id is None:
            dst_id = wallets.wallet_for(uow, wallets.USER, recipient_id, currency, sender.livemode).id
        t = SentTransfer(**new, status="succeeded", recipient_user_id=recipient_id, succeeded_at=now)
        _insert(uow, t)
        ledger.post(uow, kind="transfer", obj_type="transfer", obj_id=t.id, livemode=t.livemode,
                    currency=currency, legs=[(src_id, -amount), (dst_id, amount)])
        record_events(uow, t, "transfer.created", "transfer.succeeded")
        outbox.send_whatsapp(uow, rt, to_phone, f"You received {money} from {label}. Ref {t.id}")
        return t

    code = random_string(CLAIM_CODE_LENGTH, CLAIM_ALPHABET)
    held = wallets.system_account(uow, "claims_held", currency, sender.livemode)
    t = SentTransfer(**new, status="pending_claim", claim_code_hash=hash_claim_code(rt, code),
                     claim_expires_at=now + timedelta(hours=rt.settings.claim_window_hours),
                     auto_claim_at=now + TEST_AUTO_CLAIM_AFTER if claims_itself(sender) else None)
    _insert(uow, t)
    ledger.post(uow, kind="transfer_hold", obj_type="transfer", obj_id=t.id, livemode=t.livemode,
                currency=currency, legs=[(src_id, -amount), (held.id, amount)])
    record_events(uow, t, "transfer.created")
    outbox.send_whatsapp(uow, rt, to_phone,
                         f"{label} sent you {money} on Soxara. "
                         f"Claim it within {claim_window(rt)}: {claim_link(rt, code)} "
                         f"(or send: CLAIM {code}). Ref {t.id}",
                         # The code is a bearer secret for the money: the transcript keeps it masked.
                         sensitive=[code])
    return t


def _insert(uow: UnitOfWork, t: SentTransfer) -> None:
    """Write a new transfer with the statements that follow it. The session does not
    hold it: later changes go through `claims.locked`, which loads the row."""
    uow.defer(_INSERT, {c: getattr(t, c) for c in _COLUMNS})


def get(uow: UnitOfWork, transfer_id: str) -> Transfer:
    """The transfer as it is now (for a party to it: check who asks before showing it)."""
    return uow.get(Transfer, transfer_id, what="transfer")


def get_for_sender(uow: UnitOfWork, sender: Party, transfer_id: str) -> Transfer:
    t = get(uow, transfer_id)
    if t.sender_type != sender.kind or t.sender_id != sender.id or t.livemode != sender.livemode:
        raise NotFound("no such transfer")
    return t


def list_for_sender(uow: UnitOfWork, sender: Party, *, limit: int, before_id: str | None = None) -> list[Transfer]:
    q = select(Transfer).where(Transfer.sender_type == sender.kind, Transfer.sender_id == sender.id,
                               Transfer.livemode == sender.livemode)
    if before_id:
        q = q.where(Transfer.id < before_id)
    return list(uow.session.scalars(q.order_by(Transfer.id.desc()).limit(limit)))
