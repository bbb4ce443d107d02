"""Prefixed opaque ids (`usr_…`, `txn_…`) that sort roughly by creation time.

The first 9 characters encode milliseconds since the epoch, so that `ORDER BY id`
lists newest first without a separate index on a timestamp; the rest is random.
"""

from __future__ import annotations

import secrets
import string
import threading
import time

ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase  # sorts as ASCII
_lock = threading.Lock()
_last = 0


def _encode(n: int, width: int) -> str:
    out = []
    for _ in range(width):
        n, r = divmod(n, 62)
        out.append(ALPHABET[r])
    return "".join(reversed(out))


def new_id(prefix: str) -> str:
    global _last
    with _lock:
        ms = max(int(time.time() * 1000), _last)
        _last = ms
    rand = "".join(secrets.choice(ALPHABET) for _ in range(15))
    return f"{prefix}_{_encode(ms, 9)}{rand}"


def random_string(n: int, alphabet: str = ALPHABET) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))
