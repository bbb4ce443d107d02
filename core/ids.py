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
_last_ms = 0
_last_rand = 0
RAND_CHARS = 15
RAND_SPACE = 62**RAND_CHARS


def _encode(n: int, width: int) -> str:
    out = []
    for _ in range(width):
        n, r = divmod(n, 62)
        out.append(ALPHABET[r])
    return "".join(reversed(out))


def new_id(prefix: str) -> str:
    """Within one process ids are strictly increasing (as ULIDs are): two events written in
    the same millisecond still list in the order they happened."""
    global _last_ms, _last_rand
    with _lock:
        ms = int(time.time() * 1000)
        if ms <= _last_ms:
            ms = _last_ms
            rand = _last_rand + 1 + secrets.randbelow(1 << 20)
            if rand >= RAND_SPACE:  # astronomically unlikely: borrow the next millisecond
                ms, rand = ms + 1, secrets.randbelow(RAND_SPACE // 2)
        else:
            rand = secrets.randbelow(RAND_SPACE // 2)
        _last_ms, _last_rand = ms, rand
    return f"{prefix}_{_encode(ms, 9)}{_encode(rand, RAND_CHARS)}"


def random_string(n: int, alphabet: str = ALPHABET) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))
