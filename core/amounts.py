"""Amounts of money: the one list of currencies, the largest amount, the check every
amount passes wherever it arrives (the API, the chat, a core service), and how amounts
read to people (`US$12.50`, `L$1,000.00`). Integer minor units, never floats.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from core.errors import InvalidInput

CURRENCIES = ("USD", "LRD")
MAX_AMOUNT = 100_000_000_00  # one hundred million units: far beyond any real wallet


def is_minor_units(value) -> bool:
    """An integer number of minor units (a bool is not one, though Python says it is an int)."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_amount(amount, field: str = "amount") -> int:
    """`amount` if it is a whole number of minor units from 1 to MAX_AMOUNT; else
    InvalidInput: VALIDATION_ERROR (not an integer), AMOUNT_TOO_SMALL or AMOUNT_TOO_LARGE."""
    if not is_minor_units(amount):
        raise InvalidInput(f"{field} must be an integer number of minor units (1250 = 12.50)", field=field)
    if amount < 1:
        raise InvalidInput(f"{field} must be at least 1 minor unit", code="AMOUNT_TOO_SMALL", field=field)
    if amount > MAX_AMOUNT:
        raise InvalidInput(f"{field} must be at most {MAX_AMOUNT}", code="AMOUNT_TOO_LARGE", field=field)
    return amount


def check_currency(currency, field: str = "currency") -> str:
    """`currency` if Soxara holds it (USD or LRD); else InvalidInput INVALID_CURRENCY."""
    if not isinstance(currency, str) or currency not in CURRENCIES:
        raise InvalidInput(f"{field} must be {' or '.join(CURRENCIES)}", code="INVALID_CURRENCY", field=field)
    return currency


# How each currency is written where people read it, the Liberian way: "$" alone could be
# either dollar there.
SYMBOLS = {"USD": "US$", "LRD": "L$"}


def format_amount(minor: int, currency: str) -> str:
    """An amount as a person reads it in the chat: `US$12.50`, `L$1,000.00`, `-US$0.05`.
    Every message to a person (the bot's replies, core's notices) writes amounts with this."""
    sign = "-" if minor < 0 else ""
    units, cents = divmod(abs(minor), 100)
    return f"{sign}{SYMBOLS.get(currency, currency + ' ')}{units:,}.{cents:02d}"


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
    return check_amount(int(d * 100))
