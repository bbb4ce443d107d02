"""Fields with the contract's rules built in.

A validation message that starts with an UPPER_SNAKE code and a colon
(`"AMOUNT_TOO_SMALL: …"`) makes that code the error's code; otherwise it is
`VALIDATION_ERROR`.
"""

from __future__ import annotations

from marshmallow import ValidationError, fields

CURRENCIES = ("USD", "LRD")
MAX_AMOUNT = 100_000_000_00  # one hundred million units: far beyond any real wallet


class Amount(fields.Integer):
    """Integer minor units (`1250` = $12.50). Floats, strings, booleans, zero, negatives: refused."""

    def __init__(self, **kw):
        kw.setdefault("metadata", {})
        kw["metadata"].setdefault("description", "integer minor units (1250 = 12.50)")
        super().__init__(strict=True, **kw)

    def _deserialize(self, value, attr, data, **kw):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError("VALIDATION_ERROR: amount must be an integer number of minor units (1250 = 12.50)")
        if value <= 0:
            raise ValidationError("AMOUNT_TOO_SMALL: amount must be at least 1 minor unit")
        if value > MAX_AMOUNT:
            raise ValidationError(f"AMOUNT_TOO_LARGE: amount must be at most {MAX_AMOUNT}")
        return value

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
        if not isinstance(value, str) or value not in CURRENCIES:
            raise ValidationError("INVALID_CURRENCY: currency must be USD or LRD")
        return value


class Phone(fields.String):
    """E.164 phone number; parsed and normalised in core (INVALID_PHONE_NUMBER there)."""

    def __init__(self, **kw):
        kw.setdefault("metadata", {})
        kw["metadata"].setdefault("example", "+231881158457")
        super().__init__(**kw)

    def _deserialize(self, value, attr, data, **kw):
        if not isinstance(value, str) or not (1 <= len(value) <= 32):
            raise ValidationError("INVALID_PHONE_NUMBER: phone numbers are E.164 strings such as +231881158457")
        from core.errors import InvalidInput
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
