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

No real adapter exists yet. One is added to `_real_adapter`: given the settings, it
returns the adapter when its credentials are there, else None.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from core.errors import Unavailable

MOBILE_MONEY = ("mtn_momo", "orange_money")


@dataclass(frozen=True)
class RailResult:
    status: str  # "pending" | "succeeded" | "failed"
    failure_code: str | None = None
    message: str | None = None


class CollectionRail(Protocol):
    """Pull money from a customer's mobile-money account (they approve on their phone)."""

    name: str
    sandbox: bool  # True for the contract's test tables, False for a real provider

    def start_collection(self, *, reference: str, phone: str, amount: int, currency: str,
                         now: datetime) -> RailResult: ...

    def collection_status(self, *, reference: str, phone: str, started_at: datetime,
                          now: datetime) -> RailResult: ...


class RailUnavailable(Unavailable):
    """This rail carries no money of this mode on this deployment."""


@dataclass(frozen=True)
class Rails:
    """The rail each method's money goes over, per mode. `live[method]` is None when the
    method is off for live money."""

    test: dict[str, CollectionRail]
    live: dict[str, CollectionRail | None]

    def collection(self, method: str, livemode: bool) -> CollectionRail:
        """The rail for `method` in this mode; RailUnavailable if it is off."""
        if method not in MOBILE_MONEY:
            raise ValueError(f"unknown mobile money method {method}")
        rail = self.live[method] if livemode else self.test[method]
        if rail is None:
            raise RailUnavailable(f"{method} is not available for live payments")
        return rail

    def carries(self, method: str, livemode: bool) -> bool:
        return (self.live if livemode else self.test).get(method) is not None

    def live_rails(self) -> dict[str, str | None]:
        """For each method, what carries live money: "sandbox", "real", or None (off)."""
        return {m: None if r is None else "sandbox" if r.sandbox else "real"
                for m, r in self.live.items()}

    def describe_live(self) -> str:
        """One line for the log at start."""
        said = {None: "off (no real credentials)", "sandbox": "on the sandbox (development)",
                "real": "live"}
        return "rails for live money: " + ", ".join(
            f"{m} {said[kind]}" for m, kind in self.live_rails().items())


def _real_adapter(method: str, settings) -> CollectionRail | None:
    # No real MoMo / Orange Money adapter exists yet. When one does, it is returned here
    # if its credentials are configured.
    return None


def rails_for(settings) -> Rails:
    from core.rails.sandbox import SandboxMobileMoney

    live: dict[str, CollectionRail | None] = {}
    for method in MOBILE_MONEY:
        real = _real_adapter(method, settings)
        if real is not None:
            live[method] = real
        elif settings.production:
            live[method] = None
        else:
            live[method] = SandboxMobileMoney(method)
    return Rails(test={m: SandboxMobileMoney(m) for m in MOBILE_MONEY}, live=live)
