"""Keyset pagination: `limit` 1–100, an opaque `cursor`, newest first.

The cursor is the last item's sort key, so a page costs the same at any depth.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from marshmallow import Schema, ValidationError, fields, validate

TAG = "c1:"
_KEY = re.compile(r"[A-Za-z0-9_]{1,64}")


def encode_cursor(key: str | int) -> str:
    return base64.urlsafe_b64encode((TAG + str(key)).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        pad = "=" * (-len(cursor) % 4)
        raw = base64.b64decode(cursor + pad, altchars=b"-_", validate=True).decode()
    except Exception:
        raw = ""
    key = raw[len(TAG):] if raw.startswith(TAG) else ""
    # What encode_cursor is given: an id (`key_…`) or a sequence number that fits a BIGINT.
    if not _KEY.fullmatch(key) or (key.isdigit() and int(key) >= 2**63):
        raise ValidationError("cursor is not one this API gave out")
    return key


class CursorField(fields.String):
    def _deserialize(self, value, attr, data, **kw):
        value = super()._deserialize(value, attr, data, **kw)
        if len(value) > 200:
            raise ValidationError("cursor is not one this API gave out")
        return decode_cursor(value)


class ListQuery(Schema):
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100),
                           metadata={"description": "page size"})
    cursor = CursorField(load_default=None,
                         metadata={"description": "the `next_cursor` of the previous page"})


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
