"""Claims: the second half of a transfer sent to a number that is not a user yet.

The money waits in the claims-held account (`pending_claim`) until the person with that
phone claims it, by the code sent to them (`claim`) or, having just proved they hold
the phone, by the transfer's id (`claim_for_recipient`); at the end of the claim window
it goes back to the sender (`expire`); one a merchant sent with its test key is claimed
by itself after about ten seconds (`auto_claim`; which ones: `transfers.claims_itself`).
Every change is made under the transfer's row lock (`locked`), so a claim and the sweep
that ends the window never both move the money. The sweeps that call `expire` and
`auto_claim` for each due transfer are workers/transfers.py.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from core.amounts import format_amount
from core.db import UnitOfWork, utcnow
from core.errors import InvalidState, NotFound, Refused
from core.identity import users
from core.messaging import outbox
from core.wallets import ledger, transfers, wallets
from core.wallets.transfers import Transfer


def locked(uow: UnitOfWork, transfer_id: str) -> Transfer | None:
    """The transfer, row-locked for the rest of the transaction (loaded into the session)."""
    return uow.session.scalar(select(Transfer).where(Transfer.id == transfer_id).with_for_update())


def _theirs(t: Transfer, user, livemode: bool) -> bool:
    """Sent to this user's phone, in the mode they act in: a test transfer's money lands in
    a test wallet, which a person acting live never sees (and the other way round)."""
    return t.to_phone_number == user.phone_number and t.livemode == livemode


def claim(uow: UnitOfWork, rt, *, user_id: str, livemode: bool, claim_code: str,
          now: datetime | None = None) -> Transfer:
    """Move a pending transfer to the user it was sent to. Only that phone may claim it,
    acting in the transfer's mode."""
    now = now or utcnow()
    user = users.get(uow, user_id)
    code = (claim_code or "").strip().upper()
    found = uow.session.scalar(select(Transfer.id).where(
        Transfer.claim_code_hash == transfers.hash_claim_code(rt, code))) if code else None
    t = locked(uow, found) if found else None
    # Someone else's code, or one of the other mode, looks exactly like no code at all.
    if t is None or not _theirs(t, user, livemode):
        raise NotFound("no transfer with this claim code was sent to your number")
    return _claim_locked(uow, rt, t, user, now)


def claim_for_recipient(uow: UnitOfWork, rt, *, user_id: str, livemode: bool, transfer_id: str,
                        now: datetime | None = None) -> Transfer:
    """Claim a pending transfer by id for the user whose phone it was sent to.

    For surfaces where the person has just proved they hold that phone (the bot's login
    by a code sent to it), so the claim code adds nothing; the API claims by code.
    """
    now = now or utcnow()
    user = users.get(uow, user_id)
    t = locked(uow, transfer_id)
    if t is None or not _theirs(t, user, livemode):
        raise NotFound("no such transfer was sent to your number")
    return _claim_locked(uow, rt, t, user, now)


def _claim_locked(uow: UnitOfWork, rt, t: Transfer, user, now: datetime) -> Transfer:
    if t.status == "claimed":
        raise InvalidState(f"transfer {t.id} was already claimed")
    if t.status == "expired" or (t.claim_expires_at is not None and t.claim_expires_at <= now):
        raise Refused(f"the claim window for {t.id} has ended; the money went back to the sender",
                      code="CLAIM_EXPIRED")
    if t.status != "pending_claim":
        raise InvalidState(f"transfer {t.id} cannot be claimed")
    _complete_claim(uow, rt, t, user, now)
    return t


def _complete_claim(uow: UnitOfWork, rt, t: Transfer, user, now: datetime) -> None:
    held = wallets.system_account(uow, "claims_held", t.currency, t.livemode)
    dst = wallets.wallet_for(uow, wallets.USER, user.id, t.currency, t.livemode)
    ledger.post(uow, kind="claim", obj_type="transfer", obj_id=t.id, livemode=t.livemode,
                currency=t.currency, legs=[(held.id, -t.amount), (dst.id, t.amount)])
    t.status = "claimed"
    t.recipient_user_id = user.id
    t.claimed_at = now
    t.auto_claim_at = None
    transfers.record_events(uow, t, "transfer.claimed")
    money = format_amount(t.amount, t.currency)
    outbox.send_whatsapp(uow, rt, user.phone_number, f"You claimed {money}. It is in your wallet. Ref {t.id}")
    if t.sender_type == "user":
        outbox.send_whatsapp(uow, rt, users.get(uow, t.sender_id).phone_number,
                             f"{users.shown_as(user.phone_number, user.profile_name)} claimed the "
                             f"{money} you sent. Ref {t.id}")


def _expire(uow: UnitOfWork, rt, t: Transfer, now: datetime) -> None:
    held = wallets.system_account(uow, "claims_held", t.currency, t.livemode)
    ledger.post(uow, kind="claim_return", obj_type="transfer", obj_id=t.id, livemode=t.livemode,
                currency=t.currency, legs=[(held.id, -t.amount), (t.sender_wallet_id, t.amount)])
    t.status = "expired"
    t.expired_at = now
    t.auto_claim_at = None
    transfers.record_events(uow, t, "transfer.expired")
    if t.sender_type == "user":
        outbox.send_whatsapp(uow, rt, users.get(uow, t.sender_id).phone_number,
                             f"{users.shown(uow, t.to_phone_number)} did not claim the "
                             f"{format_amount(t.amount, t.currency)} "
                             f"you sent; it is back in your wallet. Ref {t.id}")


def _due(uow: UnitOfWork, column, now: datetime, limit: int) -> list[str]:
    return list(uow.session.scalars(
        select(Transfer.id).where(Transfer.status == "pending_claim", column <= now)
        .order_by(column).limit(limit)))


def due_to_expire(uow: UnitOfWork, now: datetime, limit: int = 200) -> list[str]:
    """Pending transfers whose claim window has ended by `now`, oldest first (the sweep's
    list: each is then handed to `expire` in a transaction of its own)."""
    return _due(uow, Transfer.claim_expires_at, now, limit)


def expire(uow: UnitOfWork, rt, transfer_id: str, now: datetime) -> bool:
    """Return one unclaimed transfer's money to its sender if its claim window has ended;
    whether it did. Re-checked under the transfer's row lock, so a claim, or another
    sweeper, that got there first leaves it alone."""
    t = locked(uow, transfer_id)
    if t is None or t.status != "pending_claim" or t.claim_expires_at is None \
            or t.claim_expires_at > now:
        return False
    _expire(uow, rt, t, now)
    return True


def due_to_auto_claim(uow: UnitOfWork, now: datetime, limit: int = 200) -> list[str]:
    """Pending transfers a merchant sent with its test key (marked when sent:
    `transfers.claims_itself`) whose auto-claim time has come, oldest first."""
    return _due(uow, Transfer.auto_claim_at, now, limit)


def auto_claim(uow: UnitOfWork, rt, transfer_id: str, now: datetime) -> bool:
    """A merchant's test-key transfer completes by itself after about ten seconds; whether
    it did. Re-checked under the transfer's row lock."""
    t = locked(uow, transfer_id)
    if t is None or t.status != "pending_claim" or t.livemode or t.auto_claim_at is None \
            or t.auto_claim_at > now:
        return False
    user = users.get_or_create(uow, t.to_phone_number)
    _complete_claim(uow, rt, t, user, now)
    return True


def pending_claims_for(uow: UnitOfWork, phone: str, livemode: bool | None = None) -> list[Transfer]:
    q = select(Transfer).where(Transfer.to_phone_number == phone, Transfer.status == "pending_claim")
    if livemode is not None:
        q = q.where(Transfer.livemode == livemode)
    return list(uow.session.scalars(q.order_by(Transfer.id)))
