"""Names people chose (a WhatsApp profile name, a merchant's name), made fit to show
another person.

Such a name ends up inside someone else's message: "Send $5.00 (USD) to +231886123456
(Kollie)?". Whoever picks it must not be able to change how the rest of that message
reads: no line breaks (a name must not add lines to a confirmation), no bidirectional
controls (U+202E turns "00.001$ dneS" into "Send $100.00"), no zero-width, invisible or
other format characters that hide or smuggle text, no pile of combining marks drawn over
the lines around the name. Names in every script stay as they are: accents, Arabic,
Devanagari, emoji, including the joiners inside emoji sequences and Persian or Indic
words.

`fit_to_show` is the one rule: applied when a name is stored and again when it is shown
(rows stored before the rule may hold anything).
"""

from __future__ import annotations

import unicodedata

NAME_LIMIT = 60
# Control, format (bidi controls, zero-width spaces, tags, soft hyphen…), surrogate and
# private-use characters.
_DROPPED = frozenset({"Cc", "Cf", "Cs", "Co"})
# Format characters that belong inside a word: kept only between two visible characters.
_JOINERS = frozenset("\u200c\u200d")  # zero-width non-joiner, zero-width joiner
# Letters that draw nothing: Hangul fillers and the braille blank make a name look empty.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
# Combining marks on one character: Vietnamese needs two, Hebrew with points three.
_MAX_MARKS = 4


def fit_to_show(name: str | None, limit: int = NAME_LIMIT) -> str | None:
    """`name` as one line of at most `limit` characters that changes nothing around it;
    None when nothing visible is left."""
    kept: list[str] = []
    marks = 0
    for ch in unicodedata.normalize("NFC", name or ""):
        category = unicodedata.category(ch)
        if ch.isspace():  # tabs, line and paragraph breaks included: one line
            kept.append(" ")
            marks = 0
        elif ch in _JOINERS:
            kept.append(ch)
        elif category in _DROPPED or ch in _BLANK_LETTERS:
            continue
        elif category.startswith("M"):
            marks += 1
            if marks <= _MAX_MARKS and kept and kept[-1] != " ":
                kept.append(ch)
        else:
            marks = 0
            kept.append(ch)
    words = " ".join(_joined_only_inside(kept).split())[:limit]
    return words.strip("".join(_JOINERS) + " ") or None


def _joined_only_inside(chars: list[str]) -> str:
    """Drop each joiner that does not sit between two visible characters."""
    def visible(i: int) -> bool:
        return 0 <= i < len(chars) and chars[i] != " " and chars[i] not in _JOINERS

    return "".join(ch for i, ch in enumerate(chars)
                   if ch not in _JOINERS or (visible(i - 1) and visible(i + 1)))
