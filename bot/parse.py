"""Reading what people type: keywords, amounts, currencies, numbers, yes and no.

Pure functions: no database, no Flask. Amounts go through core.amounts, so the bot and
the API agree on what `1,000` means (a thousand: a comma groups thousands; `12,50` is
refused rather than guessed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers

from core.amounts import parse_amount
from core.errors import InvalidInput
from core.phones import normalise_local

# Longest message worth reading: anything past this is not an answer to a menu.
READ_LIMIT = 300

KEYWORDS = {
    "MENU": "MENU", "HI": "MENU", "HELLO": "MENU", "HEY": "MENU", "START": "MENU",
    "CANCEL": "CANCEL", "HELP": "HELP", "BAL": "BAL", "BALANCE": "BAL",
    "LOGOUT": "LOGOUT", "LOG OUT": "LOGOUT",
}
KEYWORD_WORDS = frozenset(KEYWORDS)
# Asking for another login code, while logged out.
NEW_CODE_WORDS = frozenset({"NEW", "RESEND", "CODE", "NEW CODE"})

_SEND = re.compile(r"^SEND\s+(?P<rest>.+)$", re.I | re.S)
_CLAIM = re.compile(r"^CLAIM(?:\s+(?P<code>\S+))?\s*$", re.I)
_CURRENCY_WORDS = {"USD": "USD", "US$": "USD", "$": "USD",
                   "LRD": "LRD", "L$": "LRD", "LD": "LRD", "LIB": "LRD"}
_PIN = re.compile(r"\A[0-9]{4,6}\Z")
_OTP = re.compile(r"\A[0-9]{6}\Z")


def clean(text: str | None) -> str:
    """Trim, collapse whitespace, cut to what we read."""
    return " ".join((text or "").split())[:READ_LIMIT]


def keyword(text: str) -> str | None:
    """MENU, CANCEL, HELP, BAL or LOGOUT when the whole message is one (`hi!` counts)."""
    word = text.strip().strip("!.?,").upper()
    return KEYWORDS.get(word)


def wants_new_code(text: str | None) -> bool:
    return (text or "").strip().strip("!.").upper() in NEW_CODE_WORDS


def yes_no(text: str) -> bool | None:
    t = text.strip().strip("!.").upper()
    if t in ("1", "YES", "Y", "OK", "YEAH", "YEP", "CONFIRM"):
        return True
    if t in ("2", "NO", "N", "NOPE"):
        return False
    return None


def currency(text: str) -> str | None:
    t = text.strip().upper()
    if t == "1":
        return "USD"
    if t == "2":
        return "LRD"
    return _CURRENCY_WORDS.get(t)


@dataclass
class AmountReading:
    amount: int
    currency: str | None


def amount_and_currency(text: str) -> AmountReading:
    """`12.50`, `12.50 USD`, `USD 12.50`, `$12.50`, `LRD 1,000`, `1000lrd`.

    Raises InvalidInput (field "amount") with core.amounts's code: AMOUNT_TOO_SMALL,
    AMOUNT_TOO_LARGE or VALIDATION_ERROR.
    """
    t = text.strip()
    cur = None
    m = re.match(r"^(?P<cur>USD|LRD|US\$|L\$|LD)\s*(?P<rest>.*)$", t, re.I)
    if m:
        cur, t = _CURRENCY_WORDS[m.group("cur").upper()], m.group("rest")
    else:
        m = re.match(r"^(?P<rest>.*?)\s*(?P<cur>USD|LRD|LD)$", t, re.I)
        if m and m.group("rest"):
            word = m.group("cur").upper()
            cur, t = _CURRENCY_WORDS.get(word, "USD"), m.group("rest")
    t = t.strip()
    if t.startswith("$"):
        cur = cur or "USD"
    return AmountReading(parse_amount(t), cur)


def too_many_decimals(text: str) -> bool:
    return bool(re.search(r"\d\.\d{3,}\b", text))


def pin(text: str) -> str | None:
    t = text.strip()
    return t if _PIN.match(t) else None


def otp(text: str) -> str | None:
    t = text.replace(" ", "").strip()
    return t if _OTP.match(t) else None


@dataclass
class SendShortcut:
    amount_text: str | None
    currency: str | None
    recipient_text: str | None
    unknown_currency: str | None = None  # a currency word Soxara does not send ("EUR")


def send_shortcut(text: str) -> SendShortcut | None:
    """`SEND 12.50 USD 0881234567`; the currency may come first or be left out, and what
    is left out (`SEND 12.50`) the dialog asks for."""
    m = _SEND.match(text.strip())
    if not m:
        return None
    parts = m.group("rest").split()
    cur = unknown = None

    def take_currency() -> None:
        nonlocal cur, unknown, parts
        if parts and parts[0] not in ("1", "2") and currency(parts[0]):
            cur, parts = currency(parts[0]), parts[1:]
        elif parts and parts[0].isalpha():  # "EUR": not the number's first part
            unknown, parts = parts[0].upper(), parts[1:]

    take_currency()
    amount_text = parts.pop(0) if parts else None
    take_currency()
    # A number may be typed with spaces ("088 123 4567"): it takes the rest.
    return SendShortcut(amount_text, cur, " ".join(parts) or None, unknown)


def claim_shortcut(text: str) -> tuple[bool, str | None]:
    """(is it a CLAIM command, the code if one was given)."""
    m = _CLAIM.match(text.strip())
    if not m:
        return False, None
    return True, (m.group("code") or None)


class NotLiberian(InvalidInput):
    pass


def liberian_phone(text: str) -> str:
    """A Liberian number in E.164 from what a person typed. Raises InvalidInput
    (INVALID_PHONE_NUMBER), or NotLiberian for a valid number of another country."""
    e164 = normalise_local(text)
    if phonenumbers.region_code_for_number(phonenumbers.parse(e164, None)) != "LR":
        raise NotLiberian("only Liberian numbers", code="INVALID_PHONE_NUMBER", field="phone_number")
    return e164
