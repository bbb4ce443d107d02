"""Merchants' API keys.

A key is `sxm_<mode>_<prefix8><secret32>`. Only a keyed hash of the whole key is
stored; the prefix (`sxm_live_AbCdEfGh`) names the key in lists and logs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from core import crypto
from core.db import Base, UnitOfWork, UTCDateTime, utcnow
from core.errors import Forbidden, InvalidInput, InvalidState, NotFound, Unauthorized
from core.ids import new_id, random_string

SCOPES = (
    "payments:create",
    "payments:read",
    "refunds:create",
    "transfers:create",
    "gift_cards:create",
    "gift_cards:redeem",
    "bill_payments:create",
    "webhooks:manage",
    "merchant:read",
    "wallets:read",
    "memberships:manage",
    "api_keys:manage",
)
DEFAULT_SCOPES = ("payments:create", "payments:read")
KEY_RE = re.compile(r"\Asxm_(test|live)_([A-Za-z0-9]{8})([A-Za-z0-9]{32})\Z")


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    livemode: Mapped[bool] = mapped_column(Boolean)
    # "sxm_test_AbCdEfGh": unique, how a presented key finds its row.
    prefix: Mapped[str] = mapped_column(String(17), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(Text)  # space-separated
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    @property
    def scope_list(self) -> list[str]:
        return self.scopes.split()

    @property
    def mode(self) -> str:
        return "live" if self.livemode else "test"


@dataclass(frozen=True)


class MintedKey:
    key: ApiKey
    secret: str  # the full key, shown once


def check_scopes(scopes) -> list[str]:
    out: list[str] = []
    for s in scopes:
        if s not in SCOPES:
            raise InvalidInput(f"unknown scope {s!r}", field="scopes")
        if s not in out:
            out.append(s)
    return out


def _requested(scopes) -> list[str]:
    scope_list = check_scopes(DEFAULT_SCOPES if scopes is None else scopes)
    if not scope_list:
        raise InvalidInput("a key needs at least one scope", field="scopes")
    return scope_list


def check_grant(held, scopes) -> list[str]:
    """The scopes a key holding `held` would put on a new key it mints (`scopes`, or the
    default), or Forbidden naming those it lacks: a key never mints a wider key."""
    scope_list = _requested(scopes)
    missing = [s for s in scope_list if s not in held]
    if missing:
        raise Forbidden(f"this API key cannot grant {', '.join(missing)}: a key mints only keys "
                        "with scopes it holds itself", details={"missing_scopes": missing})
    return scope_list


def mint_key_by(uow: UnitOfWork, secret_key: str, minting_key_id: str, *, scopes=None,
                name: str | None = None) -> MintedKey:
    """A key minting a key: for its own merchant, in its own mode, with no scope it does not
    hold itself (Forbidden names the missing ones). The API's mint, and any other place a
    credential asks for a key, goes through here; `mint_key` is the operator's.

    The minting key's row stays locked until the caller commits, so a revocation of it
    lands either before the mint (refused: Unauthorized, as any revoked key is) or after
    the new key exists, never in between: a revoked key leaves no key behind."""
    minting = _locked(uow, minting_key_id)
    if minting is None or minting.revoked_at is not None:
        raise Unauthorized("invalid or revoked API key")
    if "api_keys:manage" not in minting.scope_list:
        raise Forbidden("this API key lacks the api_keys:manage scope")
    return mint_key(uow, secret_key, minting.merchant_id, livemode=minting.livemode,
                    scopes=check_grant(minting.scope_list, scopes), name=name)


def mint_key(uow: UnitOfWork, secret_key: str, merchant_id: str, *, livemode: bool,
             scopes=None, name: str | None = None) -> MintedKey:
    """Create an API key with any scopes: the operator's mint (`soxara merchant create`).
    A key minting a key goes through `mint_key_by`. The full key is in the result and
    nowhere else, ever."""
    scope_list = _requested(scopes)
    mode = "live" if livemode else "test"
    while True:
        prefix = f"sxm_{mode}_{random_string(8)}"
        if uow.session.scalar(select(ApiKey.id).where(ApiKey.prefix == prefix)) is None:
            break
    full = prefix + random_string(32)
    key = ApiKey(
        id=new_id("key"), merchant_id=merchant_id, livemode=livemode, prefix=prefix,
        secret_hash=crypto.keyed_hash(secret_key, "api-key", full),
        scopes=" ".join(scope_list), name=name, created_at=utcnow(),
    )
    uow.session.add(key)
    uow.session.flush()
    return MintedKey(key=key, secret=full)


def authenticate_key(uow: UnitOfWork, secret_key: str, presented: str) -> ApiKey | None:
    """The live, unrevoked key matching `presented`, or None. One indexed lookup, one HMAC."""
    m = KEY_RE.match(presented)
    if not m:
        return None
    prefix = presented[:17]
    key = uow.session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if key is None or key.revoked_at is not None:
        return None
    if not crypto.same(key.secret_hash, crypto.keyed_hash(secret_key, "api-key", presented)):
        return None
    return key


def list_keys(uow: UnitOfWork, merchant_id: str, livemode: bool, *, limit: int,
              before_id: str | None = None) -> list[ApiKey]:
    q = select(ApiKey).where(ApiKey.merchant_id == merchant_id, ApiKey.livemode == livemode)
    if before_id:
        q = q.where(ApiKey.id < before_id)
    return list(uow.session.scalars(q.order_by(ApiKey.id.desc()).limit(limit)))


def _locked(uow: UnitOfWork, key_id: str) -> ApiKey | None:
    """The key, read afresh and row-locked for the rest of the transaction: a revocation
    and whatever the key is doing (minting, being revoked) take turns."""
    return uow.session.get(ApiKey, key_id, with_for_update=True, populate_existing=True)


def get_key(uow: UnitOfWork, merchant_id: str, livemode: bool, key_id: str, *,
            lock: bool = False) -> ApiKey:
    key = _locked(uow, key_id) if lock else uow.session.get(ApiKey, key_id)
    if key is None or key.merchant_id != merchant_id or key.livemode != livemode:
        raise NotFound("no such API key")
    return key


def revoke_key(uow: UnitOfWork, merchant_id: str, livemode: bool, key_id: str) -> ApiKey:
    """Revoke a key; it fails from the very next request (keys are checked per request).
    InvalidState if it already is: of concurrent revocations one wins (the row lock)."""
    key = get_key(uow, merchant_id, livemode, key_id, lock=True)
    if key.revoked_at is not None:
        raise InvalidState("this key is already revoked")
    key.revoked_at = utcnow()
    uow.session.flush()
    return key
