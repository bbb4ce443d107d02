"""Payment rails: how money comes in from (and, later, goes out to) the world outside.

Each rail sits behind one interface with a sandbox implementation that behaves exactly
as the contract's test tables say. Which implementation carries each mode's money is
decided once, from the settings, by `rails_for` (the runtime holds the result, so the
app, the workers and the CLI agree):

- test mode: always the sandbox;
- live mode: the real adapter when its credentials are configured; else, in
  development, the sandbox (CONTRACT.md §2); else, in production, nothing: the rail is
  off for live money and every live operation on it raises `RailUnavailable` (503
  SERVICE_UNAVAILABLE) before anything is written. Live money never comes from or goes
  to a sandbox in production.

No real adapter exists yet. One is added to `_real_collection` (or `_real_cards`): given
the settings, it returns the adapter when its credentials are there, else None. Cards
are core/rails/cards.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from core.errors import Unavailable
from core.rails.cards import CardRail

T = TypeVar("T")

MOBILE_MONEY = ("mtn_momo", "orange_money")


@dataclass(frozen=True)
class RailResult:
    status: str  # "pending" | "succeeded" | "failed"
    failure_code: str | None = None
    message: str | None = None


class CollectionRail(Protocol):
    """Pull money from a customer's mobile-money account (they approve on their phone).

    `reference` is our deposit's id, and a real adapter passes it to the provider as the
    request's own reference (its idempotency key): asked twice, the provider collects once,
    and `collection_status` finds the collection by it. Both calls run while the deposit's
    row is locked (core/wallets/deposits.py `advance`), so a real adapter must time out
    quickly (a few seconds) and answer RailResult("pending") rather than raise when the
    provider is slow, unreachable or answers oddly: the sweep asks again a second later,
    and the deposit's own timeout decides in the end. An exception is a bug: the sweep
    logs it and goes on with the other deposits, but this one stays stuck until fixed.
    """

    name: str
    sandbox: bool  # True for the contract's test tables, False for a real provider

    def start_collection(self, *, reference: str, phone: str, amount: int, currency: str,
                         now: datetime) -> RailResult: ...

    def collection_status(self, *, reference: str, phone: str, started_at: datetime,
                          now: datetime) -> RailResult: ...

    def start_refund(self, *, reference: str, collection_reference: str, phone: str, amount: int,
                     currency: str, now: datetime) -> RailResult:
        """Send `amount` back to `phone` for the collection `collection_reference`;
        `reference` is our refund's id (the provider's idempotency key)."""
        ...

    def refund_status(self, *, reference: str, phone: str, started_at: datetime,
                      now: datetime) -> RailResult: ...


class RailUnavailable(Unavailable):
    """This rail carries no money of this mode on this deployment."""


@dataclass(frozen=True)
class Rails:
    """The rail each method's money goes over, per mode. `live[method]` is None when the
    method is off for live money; so is `live_cards` for cards."""

    test: dict[str, CollectionRail]
    live: dict[str, CollectionRail | None]
    test_cards: CardRail
    live_cards: CardRail | None

    def collection(self, method: str, livemode: bool) -> CollectionRail:
        """The rail for `method` in this mode; RailUnavailable if it is off."""
        if method not in MOBILE_MONEY:
            raise ValueError(f"unknown mobile money method {method}")
        rail = self.live[method] if livemode else self.test[method]
        if rail is None:
            raise RailUnavailable(f"{method} is not available for live payments")
        return rail

    def cards(self, livemode: bool) -> CardRail:
        """The card rail for this mode; RailUnavailable if it is off."""
        rail = self.live_cards if livemode else self.test_cards
        if rail is None:
            raise RailUnavailable("card is not available for live payments")
        return rail

    def carries(self, method: str, livemode: bool) -> bool:
        return (self.live if livemode else self.test).get(method) is not None

    def live_rails(self) -> dict[str, str | None]:
        """For each method (and cards), what carries live money: "sandbox", "real", or None (off)."""
        live: dict[str, CollectionRail | CardRail | None] = {**self.live, "card": self.live_cards}
        return {m: None if r is None else "sandbox" if r.sandbox else "real" for m, r in live.items()}

    def describe_live(self) -> str:
        """One line for the log at start."""
        said = {None: "off (no real credentials)", "sandbox": "on the sandbox (development)",
                "real": "live"}
        return "rails for live money: " + ", ".join(
            f"{m} {said[kind]}" for m, kind in self.live_rails().items())


def _real_collection(method: str, settings) -> CollectionRail | None:
    # No real MoMo or Orange Money adapter exists yet. When one does, it is returned here
    # if its credentials are configured.
    return None


def _real_cards(settings) -> CardRail | None:
    # No real card adapter exists yet (the same rule as _real_collection).
    return None


def live_choice(real: T | None, sandbox: T, settings) -> T | None:
    """What carries live money for one outside service (rails, billers): the real adapter
    when configured; else the sandbox in development; else nothing (production)."""
    if real is not None:
        return real
    return None if settings.production else sandbox


def rails_for(settings) -> Rails:
    from core.rails.cards import SandboxCards
    from core.rails.sandbox import SandboxMobileMoney

    live: dict[str, CollectionRail | None] = {
        m: live_choice(_real_collection(m, settings), SandboxMobileMoney(m), settings) for m in MOBILE_MONEY}
    return Rails(test={m: SandboxMobileMoney(m) for m in MOBILE_MONEY}, live=live,
                 test_cards=SandboxCards(),
                 live_cards=live_choice(_real_cards(settings), SandboxCards(), settings))
