"""Keyset pagination: `limit` 1–100, an opaque `cursor`, newest first.

The cursor is the last item's sort key, so a page costs the same at any depth.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from marshmallow import Schema, ValidationError, fields, validate

TAG = "c1:"


def encode_cursor(key: str | int) -> str:
    return base64.urlsafe_b64encode((TAG + str(key)).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        pad = "=" * (-len(cursor) % 4)
        raw = base64.b64decode(cursor + pad, altchars=b"-_", validate=True).decode()
    except Exception:
        raw = ""
    if not raw.startswith(TAG) or not raw[len(TAG):].isalnum() and "_" not in raw:
        raise ValidationError("cursor is not one this API gave out")
    return raw[len(TAG):]


class CursorField(fields.String):
    def _deserialize(self, value, attr, data, **kw):
        value = super()._deserialize(value, attr, data, **kw)
        if len(value) > 200:
            raise ValidationError("cursor is not one this API gave out")
        return decode_cursor(value)


class ListQuery(Schema):
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
    cursor = CursorField(load_default=None)


@dataclass
class Page:
    items: list
    has_more: bool
    next_cursor: str | None


def page_of(rows: list, limit: int, key_of) -> Page:
    """`rows` was fetched with limit+1: the extra row only says whether there is more."""
    has_more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, has_more, encode_cursor(key_of(rows[-1])) if has_more and rows else None)
