"""Phone numbers: E.164 for everything we store; local Liberian forms where people type."""

from __future__ import annotations

import functools
import re

import phonenumbers

from core.errors import InvalidInput

DEFAULT_REGION = "LR"
_E164 = re.compile(r"\A\+[1-9][0-9]{6,14}\Z")


def _parse(text: str, region: str | None) -> phonenumbers.PhoneNumber:
    try:
        num = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise InvalidInput(f"{text!r} is not a phone number", code="INVALID_PHONE_NUMBER",
                           field="phone_number") from None
    if not phonenumbers.is_valid_number(num):
        raise InvalidInput(f"{text!r} is not a valid phone number", code="INVALID_PHONE_NUMBER",
                           field="phone_number")
    return num


@functools.lru_cache(maxsize=8192)
def normalise_e164(text: str) -> str:
    """A strict E.164 string (`+231881158457`), as the API takes them.

    Cached: parsing with phonenumbers costs more than the rest of a request's checks,
    and the same few numbers come again and again (an invalid one raises, uncached)."""
    # Only the form itself: phonenumbers alone would also take spaces, dashes, brackets,
    # other scripts' digits and drop an extension ("+231881000203 ext. 99"), and a number
    # a merchant sent is then not the number we stored.
    if not isinstance(text, str) or not _E164.match(text):
        raise InvalidInput("phone numbers must be in E.164 form, such as +231881158457",
                           code="INVALID_PHONE_NUMBER", field="phone_number")
    return phonenumbers.format_number(_parse(text, None), phonenumbers.PhoneNumberFormat.E164)


def normalise_local(text: str, region: str = DEFAULT_REGION) -> str:
    """What a person types in chat: `0881158457`, `+231 88 115 8457`, `231881158457`."""
    cleaned = "".join(ch for ch in (text or "") if ch.isdigit() or ch == "+")
    if cleaned.startswith("00"):
        cleaned = "+" + cleaned[2:]
    if cleaned.startswith("231") and len(cleaned) >= 11:
        cleaned = "+" + cleaned
    return phonenumbers.format_number(_parse(cleaned, region), phonenumbers.PhoneNumberFormat.E164)


def local_form(e164: str) -> str:
    """How a person writes a number of their own country: `+231886100001` -> `0886100001`."""
    num = phonenumbers.parse(e164, None)
    return "0" + phonenumbers.national_significant_number(num)


def country_code(e164: str) -> str:
    return phonenumbers.region_code_for_number(phonenumbers.parse(e164, None)) or "ZZ"
