"""Billers: who a bill can be paid to, and the rail that pays them (TIMM).

`catalog(settings)` is the list `GET /v1/billers` shows: LEC (prepaid electricity, which
answers with a 20-digit STS token) and LWSC (water) by default, or the list given as JSON
in SOXARA_BILLERS (each with the fields of `BillerInfo`; refused at start if malformed).

Every biller is paid over one rail, TIMM, behind the `Biller` interface: the sandbox's is
core/billers/sandbox.py; a real one, needing an HTTP client core may not import, is
injected by the runtime's builder (workers/runtime.py). Which carries each mode's money
follows the rails' rule (core/rails `live_choice`): test mode the sandbox; live mode the
real adapter when configured, the sandbox in development, nothing in production.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Protocol

from core.amounts import CURRENCIES
from core.config import ConfigError
from core.rails import RailUnavailable, live_choice


@dataclass(frozen=True)
class BillerInfo:
    code: str
    name: str
    category: str  # "electricity" | "water" | …
    prepaid: bool
    currencies: tuple[str, ...]
    account_number_pattern: str  # a regular expression the whole account number matches
    account_number_example: str

    def accepts(self, account_number: str) -> bool:
        return re.fullmatch(self.account_number_pattern, account_number or "") is not None

    def as_dict(self) -> dict:
        return {**asdict(self), "currencies": list(self.currencies)}


DEFAULT_BILLERS = (
    BillerInfo(code="LEC", name="Liberia Electricity Corporation", category="electricity", prepaid=True,
               currencies=CURRENCIES, account_number_pattern="^[0-9]{11}$",
               account_number_example="04123456789"),
    BillerInfo(code="LWSC", name="Liberia Water and Sewer Corporation", category="water", prepaid=False,
               currencies=CURRENCIES, account_number_pattern="^[0-9]{8}$",
               account_number_example="20012345"),
)


def catalog(settings) -> tuple[BillerInfo, ...]:
    """The billers of this deployment: SOXARA_BILLERS, else LEC and LWSC. ConfigError
    names what is wrong with a malformed list."""
    if not settings.billers:
        return DEFAULT_BILLERS
    try:
        given = json.loads(settings.billers)
        if not isinstance(given, list) or not given:
            raise ValueError("a non-empty JSON list of billers")
        billers = tuple(_biller(b) for b in given)
    except (ValueError, TypeError, KeyError, re.error) as e:
        raise ConfigError(f"SOXARA_BILLERS: {e}") from None
    codes = [b.code for b in billers]
    if len(set(codes)) != len(codes):
        raise ConfigError("SOXARA_BILLERS: a biller code appears twice")
    return billers


def _biller(given: dict) -> BillerInfo:
    fields = set(BillerInfo.__dataclass_fields__)
    if not isinstance(given, dict) or set(given) != fields:
        raise ValueError(f"each biller has exactly the fields {sorted(fields)}")
    b = BillerInfo(**{**given, "currencies": tuple(given["currencies"])})
    if not all(isinstance(getattr(b, f), str) and getattr(b, f) for f in
               ("code", "name", "category", "account_number_pattern", "account_number_example")):
        raise ValueError(f"{b.code}: code, name, category and the account number fields are text")
    if not isinstance(b.prepaid, bool) or not b.currencies or set(b.currencies) - set(CURRENCIES):
        raise ValueError(f"{b.code}: prepaid is true or false; currencies are some of {list(CURRENCIES)}")
    re.compile(b.account_number_pattern)
    if not b.accepts(b.account_number_example):
        raise ValueError(f"{b.code}: the example account number does not match the pattern")
    return b


@dataclass(frozen=True)
class BillResult:
    status: str  # "pending" | "succeeded" | "failed"
    token: str | None = None  # prepaid electricity: the STS token the customer keys into the meter
    units: str | None = None  # what the token buys ("57.1 kWh")
    failure_code: str | None = None
    message: str | None = None
    # The call got no answer in time: whether the biller took the payment is unknown until
    # `status` says (never pay again under another reference).
    timed_out: bool = False


class Biller(Protocol):
    """Pays bills to the billers of the catalog. `reference` is our bill payment's id and is
    the biller's idempotency key: paid twice with it, the bill is paid once, and `status`
    finds the payment by it (after a time-out: never pay again under a new reference). A
    real adapter times out quickly and answers pending (timed_out) rather than raise."""

    name: str
    sandbox: bool

    def pay(self, *, reference: str, biller: str, account_number: str, amount: int, currency: str,
            now: datetime) -> BillResult: ...

    def status(self, *, reference: str, biller: str, account_number: str, amount: int, currency: str,
               started_at: datetime, now: datetime) -> BillResult: ...


@dataclass(frozen=True)
class Billers:
    """The deployment's billers and the rail that pays them in each mode (`live` None: off)."""

    catalog: tuple[BillerInfo, ...]
    test: Biller
    live: Biller | None

    def get(self, code: str) -> BillerInfo | None:
        return next((b for b in self.catalog if b.code == code), None)

    def rail(self, livemode: bool) -> Biller:
        rail = self.live if livemode else self.test
        if rail is None:
            raise RailUnavailable("TIMM is not available for live payments")
        return rail

    def describe_live(self) -> str:
        kind = None if self.live is None else "sandbox" if self.live.sandbox else "real"
        said = {None: "off (no real credentials)", "sandbox": "on the sandbox (development)", "real": "live"}
        return f"billers ({', '.join(b.code for b in self.catalog)}) over TIMM for live money: {said[kind]}"


def _real_timm(settings) -> Biller | None:
    # No real TIMM adapter exists yet. When one does, it is returned here (or injected by
    # workers/runtime.py if it needs an HTTP client) when its credentials are configured.
    return None


def billers_for(settings) -> Billers:
    from core.billers.sandbox import SandboxTimm

    return Billers(catalog=catalog(settings), test=SandboxTimm(),
                   live=live_choice(_real_timm(settings), SandboxTimm(), settings))
