"""How amounts read to people: `$12.50`, `LRD 1,000.00`. Integer minor units, never floats."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from core.errors import InvalidInput


def format_amount(minor: int, currency: str) -> str:
    sign = "-" if minor < 0 else ""
    units, cents = divmod(abs(minor), 100)
    text = f"{units:,}.{cents:02d}"
    return f"{sign}${text}" if currency == "USD" else f"{sign}{currency} {text}"


_PLAIN = re.compile(r"^(\d+(\.\d*)?|\.\d+)$")
_GROUPED = re.compile(r"^\d{1,3}(,\d{3})+(\.\d+)?$")


def parse_amount(text: str) -> int:
    """What a person types (`12.50`, `1,000`, `$5`) as minor units. At most two decimals."""
    t = (text or "").strip().lstrip("$").strip()
    if "," in t:
        # "1,000" is a thousand; "12,50" might mean 12.50 and must not become 1,250.
        if not _GROUPED.match(t):
            raise InvalidInput("type an amount like 12.50 (a dot for cents)", field="amount")
        t = t.replace(",", "")
    if t.startswith("-"):
        raise InvalidInput("the amount must be more than zero", code="AMOUNT_TOO_SMALL", field="amount")
    if not _PLAIN.match(t):
        raise InvalidInput("type an amount like 12.50", field="amount")
    try:
        d = Decimal(t)
    except InvalidOperation:
        raise InvalidInput("type an amount like 12.50", field="amount") from None
    if not d.is_finite() or d <= 0:
        raise InvalidInput("the amount must be more than zero", code="AMOUNT_TOO_SMALL", field="amount")
    if d != d.quantize(Decimal("0.01")):
        raise InvalidInput("amounts have at most two decimals (cents)", field="amount")
    minor = int(d * 100)
    if minor > 100_000_000_00:
        raise InvalidInput("that amount is too large", code="AMOUNT_TOO_LARGE", field="amount")
    return minor
