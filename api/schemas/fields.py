"""Fields with the contract's rules built in.

A validation message that starts with an UPPER_SNAKE code and a colon
(`"AMOUNT_TOO_SMALL: …"`) makes that code the error's code; otherwise it is
`VALIDATION_ERROR`.
"""

from __future__ import annotations

from marshmallow import ValidationError, fields

from core.amounts import CURRENCIES, MAX_AMOUNT, check_amount, check_currency
from core.errors import InvalidInput


def _refusal(e: InvalidInput) -> ValidationError:
    """Core's refusal as the field's: its code, then its message."""
    return ValidationError(f"{e.code}: {e.message}")


class Amount(fields.Integer):
    """Integer minor units (`1250` = $12.50). Floats, strings, booleans, zero, negatives: refused."""

    def __init__(self, **kw):
        kw.setdefault("metadata", {})
        kw["metadata"].setdefault("description", "integer minor units (1250 = 12.50)")
        super().__init__(strict=True, **kw)

    def _deserialize(self, value, attr, data, **kw):
        try:
            return check_amount(value)
        except InvalidInput as e:
            raise _refusal(e) from None

    def _jsonschema_type_mapping(self):
        return {"type": "integer", "minimum": 1, "maximum": MAX_AMOUNT}


class Currency(fields.String):
    def __init__(self, **kw):
        kw.setdefault("required", True)
        kw.setdefault("error_messages", {})
        kw["error_messages"].setdefault("required", "INVALID_CURRENCY: currency is required: USD or LRD")
        kw["error_messages"].setdefault("null", "INVALID_CURRENCY: currency is required: USD or LRD")
        kw.setdefault("metadata", {})
        kw["metadata"].setdefault("enum", list(CURRENCIES))
        super().__init__(**kw)

    def _deserialize(self, value, attr, data, **kw):
        try:
            return check_currency(value)
        except InvalidInput as e:
            raise _refusal(e) from None


class Phone(fields.String):
    """E.164 phone number; parsed and normalised in core (INVALID_PHONE_NUMBER there)."""

    def __init__(self, **kw):
        kw.setdefault("metadata", {})
        kw["metadata"].setdefault("example", "+231881158457")
        super().__init__(**kw)

    def _deserialize(self, value, attr, data, **kw):
        if not isinstance(value, str) or not (1 <= len(value) <= 32):
            raise ValidationError("INVALID_PHONE_NUMBER: phone numbers are E.164 strings such as +231881158457")
        from core.phones import normalise_e164

        try:
            return normalise_e164(value)
        except InvalidInput as e:
            raise ValidationError(f"INVALID_PHONE_NUMBER: {e.message}") from None


class Timestamp(fields.DateTime):
    """ISO-8601 UTC with a `Z`."""

    def _serialize(self, value, attr, obj, **kw):
        if value is None:
            return None
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
