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
    # What people say to get out of a question: CANCEL in other words.
    "STOP": "CANCEL", "EXIT": "CANCEL", "QUIT": "CANCEL", "BACK": "CANCEL",
}
KEYWORD_WORDS = frozenset(KEYWORDS)
# Asking for another login code, while logged out.
NEW_CODE_WORDS = frozenset({"NEW", "RESEND", "CODE", "NEW CODE"})
# "No": the answer at a yes/no question; at any other question it leaves, like CANCEL.
NO_WORDS = frozenset({"NO", "N", "NOPE"})
# Thanks and OKs, answered in a line rather than "Sorry, I didn't get that" and the menu.
THANKS_WORDS = frozenset({"THANKS", "THANK YOU", "THANK U", "THANKS A LOT", "THANK YOU VERY MUCH",
                          "THX", "TNX", "TANKS", "TANK YOU", "NO THANKS", "NO THANK YOU"})
OK_WORDS = frozenset({"OK", "OKAY", "OKAY THANKS", "OK THANKS", "K", "KK", "FINE", "COOL", "GREAT",
                      "ALRIGHT", "ALL RIGHT", "GOOD", "\N{THUMBS UP SIGN}", "\N{OK HAND SIGN}"})
# Skin tones and the emoji presentation selector: 👍🏾 is 👍.
_EMOJI_MODIFIERS = dict.fromkeys([*range(0x1F3FB, 0x1F400), 0xFE0F])

_SEND = re.compile(r"^SEND\s+(?P<rest>.+)$", re.I | re.S)
_CLAIM = re.compile(r"^CLAIM(?:\s+(?P<code>\S+))?\s*$", re.I)
# How people name the two currencies. "Dollars" alone could be either in Liberia: it names
# no currency (None), so the chat asks which. `$` typed with an amount means US dollars.
DOLLARS = "DOLLARS"
_CURRENCY_WORDS: dict[str, str | None] = {
    "USD": "USD", "US$": "USD", "$": "USD", "US DOLLAR": "USD", "US DOLLARS": "USD",
    "LRD": "LRD", "L$": "LRD", "LD": "LRD", "LIB": "LRD", "LIBERIAN DOLLAR": "LRD",
    "LIBERIAN DOLLARS": "LRD", "LIB DOLLARS": "LRD",
    "DOLLAR": None, "DOLLARS": None,
}
_CURRENCY_ALTERNATIVES = "|".join(
    re.escape(w).replace(r"\ ", r"\s+") for w in sorted(_CURRENCY_WORDS, key=len, reverse=True))
_LEADING_CURRENCY = re.compile(rf"^(?P<cur>{_CURRENCY_ALTERNATIVES})\s*(?P<rest>.*)$", re.I)
_TRAILING_CURRENCY = re.compile(rf"^(?P<rest>.*?)\s*(?P<cur>{_CURRENCY_ALTERNATIVES})$", re.I)
# Words around a send that carry nothing: "send money", "send $1 to 0881234567".
_FILLER = frozenset({"TO", "MONEY", "PLEASE", "PLS", "FOR"})
_PIN = re.compile(r"\A[0-9]{4,6}\Z")
_OTP = re.compile(r"\A[0-9]{6}\Z")


def clean(text: str | None) -> str:
    """Trim, collapse whitespace, cut to what we read."""
    return " ".join((text or "").split())[:READ_LIMIT]


def keyword(text: str) -> str | None:
    """MENU, CANCEL, HELP, BAL or LOGOUT when the whole message is one (`hi!` counts)."""
    word = text.strip().strip("!.?,").upper()
    return KEYWORDS.get(word)


def is_no(text: str) -> bool:
    return text.strip().strip("!.,").upper() in NO_WORDS


def acknowledgement(text: str) -> str | None:
    """"thanks" or "ok" when the whole message is a thank-you or an OK (`Thanks!`, `ok`, 👍🏾)."""
    t = " ".join(text.translate(_EMOJI_MODIFIERS).upper().replace("!", " ").replace(".", " ").split())
    if t in THANKS_WORDS:
        return "thanks"
    if t in OK_WORDS or (t and set(t) <= {"\N{THUMBS UP SIGN}", " "}):
        return "ok"
    return None


def wants_new_code(text: str | None) -> bool:
    return (text or "").strip().strip("!.").upper() in NEW_CODE_WORDS


def yes_no(text: str) -> bool | None:
    t = text.strip().strip("!.").upper()
    if t in ("1", "YES", "Y", "OK", "YEAH", "YEP", "CONFIRM"):
        return True
    if t in ("2", "NO", "N", "NOPE"):
        return False
    return None


def _currency_word(text: str) -> str:
    return " ".join(text.upper().split())


def currency(text: str) -> str | None:
    """The currency a person named: `1`/`2` (the question's choices), `USD`, `L$`,
    `US dollars`, `Liberian dollars`…; None for anything else, "dollars" alone included."""
    t = _currency_word(text.strip().strip(".!"))
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
    """`12.50`, `12.50 USD`, `USD 12.50`, `$12.50`, `L$1,000`, `1000lrd`, `5 US dollars`;
    `5 dollars` is an amount without a currency (either dollar: the chat asks).

    Raises InvalidInput (field "amount") with core.amounts's code: AMOUNT_TOO_SMALL,
    AMOUNT_TOO_LARGE or VALIDATION_ERROR.
    """
    t = text.strip().rstrip(".!")
    cur = None
    m = _LEADING_CURRENCY.match(t)
    if not (m and m.group("rest")):
        m = _TRAILING_CURRENCY.match(t)
    if m and m.group("rest"):
        cur, t = _CURRENCY_WORDS[_currency_word(m.group("cur"))], m.group("rest")
    t = t.strip()
    if t.startswith("$"):
        cur = cur or "USD"
    return AmountReading(parse_amount(t), cur)


def names_currency(text: str) -> bool:
    """Whether a message is an amount with a word for money (`5 usd`, `$5`, `5 dollars`):
    at the menu, what a person wants to send. A bare number is not (`5` is a menu choice)."""
    t = text.strip().rstrip(".!")
    if not re.search(r"\d", t) or t.isdigit():
        return False
    return bool(t.lstrip().startswith("$") or _LEADING_CURRENCY.match(t) or _TRAILING_CURRENCY.match(t))


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
    unknown_currency: str | None = None  # a currency code Soxara does not send ("EUR")


def send_shortcut(text: str) -> SendShortcut | None:
    """`SEND 12.50 USD 0881234567`, `send $1 to 0881234567`, `send 5 dollars`, `send
    money`: the currency may come first or be left out ("dollars" leaves it out: either
    dollar), words that carry nothing ("to", "money") are passed over, and what is left
    out the dialog asks for."""
    m = _SEND.match(text.strip())
    if not m:
        return None
    parts = [w for w in m.group("rest").split() if w.upper().strip(".,!") not in _FILLER]
    cur = unknown = None

    def take_currency() -> None:
        nonlocal cur, unknown, parts
        for n in (2, 1):  # "US dollars" before "US"
            words = parts[:n]
            if len(words) == n and words[-1] not in ("1", "2") and \
                    _currency_word(" ".join(words)) in _CURRENCY_WORDS:
                cur, parts = currency(" ".join(words)), parts[n:]
                return
        if parts and parts[0].isalpha() and len(parts[0]) == 3:  # "EUR": a currency code
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
