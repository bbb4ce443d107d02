"""Payment rails: how money comes in from (and, later, goes out to) the world outside.

Each rail sits behind one interface with a sandbox implementation that behaves exactly
as the contract's test tables say. Test mode always uses the sandbox; live mode uses a
real adapter when its credentials are configured, and the sandbox until then.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

MOBILE_MONEY = ("mtn_momo", "orange_money")


@dataclass(frozen=True)
class RailResult:
    status: str  # "pending" | "succeeded" | "failed"
    failure_code: str | None = None
    message: str | None = None


class CollectionRail(Protocol):
    """Pull money from a customer's mobile-money account (they approve on their phone)."""

    name: str

    def start_collection(self, *, reference: str, phone: str, amount: int, currency: str,
                         now: datetime) -> RailResult: ...

    def collection_status(self, *, reference: str, phone: str, started_at: datetime,
                          now: datetime) -> RailResult: ...


def collection_rail(method: str, livemode: bool) -> CollectionRail:
    from core.rails.sandbox import SandboxMobileMoney

    if method not in MOBILE_MONEY:
        raise ValueError(f"unknown mobile money method {method}")
    # No live adapter is configured yet: every rail is the sandbox (CONTRACT.md §2).
    return SandboxMobileMoney(method)
