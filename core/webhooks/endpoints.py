"""Merchants' webhook endpoints (`we_…`): where their events are POSTed, and with what secret.

An endpoint belongs to one merchant and one mode: a test endpoint hears test events only,
a live one live events only. It lists the event types it wants (`*`: all of them).

The signing secret (`whsec_…`) is shown once, when the endpoint is created or its secret
rotated. Soxara must sign every delivery with it, so it cannot be kept as a hash: it is
kept sealed (Fernet under a key derived from SOXARA_SECRET_KEY for this purpose alone)
and opened only by the worker that signs. It never appears in a log, an event or a list.
Rotating keeps the previous secret signing beside the new one for `ROTATION_OVERLAP`,
so a receiver can switch without dropping a delivery.

Deleting an endpoint keeps its row (its deliveries and attempts still name it) but it is
gone for every route and receives nothing more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Boolean, ForeignKey, Index, LargeBinary, String, Text, func, select
from sqlalchemy.orm import Mapped, mapped_column

from core.crypto import Sealer
from core.db import Base, UnitOfWork, UTCDateTime, utcnow
from core.errors import InvalidInput, InvalidState, NotFound
from core.events.events import TYPES
from core.ids import new_id, random_string
from core.merchants.merchants import Merchant
from core.webhooks.urls import check_url

ALL = "*"
SECRET_PREFIX = "whsec_"
ROTATION_OVERLAP = timedelta(hours=24)
MAX_PER_MODE = 16  # endpoints a merchant may have in each mode
MAX_DESCRIPTION = 500
_SEAL_PURPOSE = "webhook-signing-secret"


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_merchant", "merchant_id", "livemode", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # we_…
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    livemode: Mapped[bool] = mapped_column(Boolean)
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[str] = mapped_column(Text)  # space-separated types, or "*"
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Why Soxara disabled it (every delivery failing for FAILING_FOR); None when the
    # merchant did, or it is enabled.
    disabled_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # When the current run of failed attempts began; None after any success.
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    secret_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    previous_secret_sealed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    @property
    def event_types(self) -> list[str]:
        return self.events.split()

    def listens_for(self, event_type: str) -> bool:
        return self.enabled and self.deleted_at is None and (
            self.events == ALL or event_type in self.event_types)

    def snapshot(self) -> dict:
        """The endpoint as its merchant sees it (without any secret): events carry this."""
        from core.events.events import iso

        return {"id": self.id, "object": "webhook_endpoint", "livemode": self.livemode, "url": self.url,
                "events": self.event_types, "description": self.description, "enabled": self.enabled,
                "disabled_reason": self.disabled_reason, "created_at": iso(self.created_at)}


@dataclass(frozen=True)
class WithSecret:
    """An endpoint and its new signing secret: the one time the secret is shown."""

    endpoint: WebhookEndpoint
    secret: str


def check_events(events: object) -> str:
    """The stored form of an `events` list, or InvalidInput (field `events`)."""
    if not isinstance(events, list) or not events:
        raise InvalidInput('events must be a list of event types, or ["*"] for all', field="events")
    wanted: list[str] = []
    for t in events:
        if t != ALL and t not in TYPES:
            raise InvalidInput(f"unknown event type {t!r}", field="events")
        if t not in wanted:
            wanted.append(t)
    return ALL if ALL in wanted else " ".join(wanted)


def check_description(description: object) -> str | None:
    if description is None:
        return None
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise InvalidInput(f"description is text of at most {MAX_DESCRIPTION} characters", field="description")
    return description


def _new_secret(secret_key: str) -> tuple[str, bytes]:
    secret = SECRET_PREFIX + random_string(32)
    return secret, Sealer(secret_key, _SEAL_PURPOSE).seal(secret.encode())


def create(uow: UnitOfWork, secret_key: str, *, merchant_id: str, livemode: bool, url: str,
           events: list[str], description: str | None = None, enabled: bool = True) -> WithSecret:
    """A new endpoint in the merchant's `livemode`, and its signing secret (shown once)."""
    checked_url = check_url(url, livemode=livemode)
    stored_events = check_events(events)
    description = check_description(description)
    # The merchant's row lock makes creations take turns, so racing ones cannot all see
    # room for one more.
    uow.session.get(Merchant, merchant_id, with_for_update=True)
    count = uow.session.scalar(select(func.count()).select_from(WebhookEndpoint).where(
        WebhookEndpoint.merchant_id == merchant_id, WebhookEndpoint.livemode == livemode,
        WebhookEndpoint.deleted_at.is_(None)))
    if (count or 0) >= MAX_PER_MODE:
        raise InvalidState(f"a merchant has at most {MAX_PER_MODE} webhook endpoints in each mode; "
                           "delete one first")
    secret, sealed = _new_secret(secret_key)
    now = utcnow()
    e = WebhookEndpoint(id=new_id("we"), merchant_id=merchant_id, livemode=livemode, url=checked_url,
                        events=stored_events, description=description, enabled=bool(enabled),
                        secret_sealed=sealed, created_at=now, updated_at=now)
    uow.session.add(e)
    uow.session.flush()
    return WithSecret(e, secret)


def get(uow: UnitOfWork, merchant_id: str, livemode: bool, endpoint_id: str, *,
        lock: bool = False) -> WebhookEndpoint:
    """The merchant's endpoint in this mode, or NotFound (another's, the other mode's,
    deleted: all alike)."""
    e = uow.session.get(WebhookEndpoint, endpoint_id, with_for_update=lock or None,
                        populate_existing=lock)
    if e is None or e.merchant_id != merchant_id or e.livemode != livemode or e.deleted_at is not None:
        raise NotFound("no such webhook endpoint")
    return e


def list_for(uow: UnitOfWork, merchant_id: str, livemode: bool, *, limit: int,
             before_id: str | None = None) -> list[WebhookEndpoint]:
    q = select(WebhookEndpoint).where(WebhookEndpoint.merchant_id == merchant_id,
                                      WebhookEndpoint.livemode == livemode,
                                      WebhookEndpoint.deleted_at.is_(None))
    if before_id:
        q = q.where(WebhookEndpoint.id < before_id)
    return list(uow.session.scalars(q.order_by(WebhookEndpoint.id.desc()).limit(limit)))


def update(uow: UnitOfWork, merchant_id: str, livemode: bool, endpoint_id: str, changes: dict) -> WebhookEndpoint:
    """Change any of url, events, description, enabled. Enabling an endpoint Soxara
    disabled gives it a fresh start: its failures so far no longer count."""
    e = get(uow, merchant_id, livemode, endpoint_id, lock=True)
    if "url" in changes:
        e.url = check_url(changes["url"], livemode=livemode)
    if "events" in changes:
        e.events = check_events(changes["events"])
    if "description" in changes:
        e.description = check_description(changes["description"])
    if "enabled" in changes:
        if changes["enabled"] and not e.enabled:
            e.failing_since, e.disabled_reason = None, None
        e.enabled = bool(changes["enabled"])
    e.updated_at = utcnow()
    uow.session.flush()
    return e


def delete(uow: UnitOfWork, merchant_id: str, livemode: bool, endpoint_id: str) -> WebhookEndpoint:
    """Delete the endpoint: nothing more is sent to it, and no route finds it again."""
    e = get(uow, merchant_id, livemode, endpoint_id, lock=True)
    e.deleted_at = e.updated_at = utcnow()
    e.enabled = False
    uow.session.flush()
    return e


def rotate_secret(uow: UnitOfWork, secret_key: str, merchant_id: str, livemode: bool,
                  endpoint_id: str, *, now: datetime | None = None) -> WithSecret:
    """A new signing secret (shown this once); the current one goes on signing beside it
    for ROTATION_OVERLAP. A second rotation within that window ends the oldest secret at
    once: two secrets sign at most."""
    now = now or utcnow()
    e = get(uow, merchant_id, livemode, endpoint_id, lock=True)
    secret, sealed = _new_secret(secret_key)
    e.previous_secret_sealed, e.previous_secret_expires_at = e.secret_sealed, now + ROTATION_OVERLAP
    e.secret_sealed = sealed
    e.updated_at = now
    uow.session.flush()
    return WithSecret(e, secret)


def signing_secrets(e: WebhookEndpoint, secret_key: str, now: datetime) -> list[str]:
    """The secrets a delivery is signed with now: the current one, then the previous one
    while its overlap lasts. A secret sealed under another SOXARA_SECRET_KEY cannot be
    opened: the endpoint then needs a new one (rotate-secret), and it is an error here."""
    sealer = Sealer(secret_key, _SEAL_PURPOSE)
    sealed = [e.secret_sealed]
    if e.previous_secret_sealed is not None and e.previous_secret_expires_at is not None \
            and e.previous_secret_expires_at > now:
        sealed.append(e.previous_secret_sealed)
    out = []
    for s in sealed:
        opened = sealer.open(bytes(s))
        if opened is None:
            raise SecretUnreadable(f"the signing secret of {e.id} cannot be opened (SOXARA_SECRET_KEY changed?)")
        out.append(opened.decode())
    return out


class SecretUnreadable(Exception):
    """An endpoint's sealed secret does not open under this SOXARA_SECRET_KEY."""
