"""The Luhn check, which every real card number passes: the sandbox card rail declines a
number that fails it (core/rails/cards.py), and the transcript masks a run of digits only
when it passes (core/messaging/conversations.py), so amounts and phones stay readable."""

from __future__ import annotations


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0
