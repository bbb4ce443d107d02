"""Request bodies as JSON, with the bounds the standard library's parser leaves out.

Every JSON body the app reads goes through `parse`, which refuses (`BadJson`, a 400):

- nesting deeper than `MAX_DEPTH` (32) containers. json.loads recurses once per level
  and so does everything after it (validation, the checks on stored text), so a few
  hundred bytes of `[[[[…` was a RecursionError, a 500, without any login. The depth is
  counted before parsing, by a scan of the text that skips strings (a bracket inside a
  string is text). Real bodies (metadata objects included) are a few levels deep.
- `NaN`, `Infinity` and `-Infinity`, which are not JSON, and numbers no float can hold
  (`1e999999` would be infinity);
- integers longer than Python's int-string limit (4,300 digits; json.loads raises);
- an object that names a key twice: `{"amount": 5, "amount": 6}` means nothing
  certain, and the money must not follow whichever one a parser keeps.

The body is at most 1 MB (`MAX_CONTENT_LENGTH`); strings and numbers within that are
values for validation (422), not parser errors.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

MAX_DEPTH = 32

# A string, from its quote to the closing one or, unclosed, to the end of the text: the
# possessive repeats never backtrack, so the scan stays linear on any input.
_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"?', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]++")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class BadJson(ValueError):
    """The body is not JSON we take; the message says why."""


def depth(text: str) -> int:
    """How many containers deep the text's brackets go, strings skipped. For text that is
    not JSON, at least as deep as a parser gets before it finds the error."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _object(pairs: list) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set = set()
        for k, _ in pairs:
            if k in seen:
                raise BadJson(f"the body names {k!r} more than once")
            seen.add(k)
    return obj


def _not_json(name: str):
    raise BadJson(f"{name} is not JSON")


def _finite(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise BadJson(f"the number {literal[:20]} is out of range")
    return value


def parse(raw: bytes) -> Any:
    """The JSON value in `raw` (UTF-8, or UTF-16/32 as JSON allows), or BadJson."""
    try:
        text = raw.decode(json.detect_encoding(raw))
    except UnicodeDecodeError:
        raise BadJson("the body is not valid JSON") from None
    if depth(text) > MAX_DEPTH:
        raise BadJson(f"the body nests deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(text, object_pairs_hook=_object, parse_constant=_not_json,
                          parse_float=_finite)
    except BadJson:
        raise
    except (ValueError, RecursionError):
        raise BadJson("the body is not valid JSON") from None
