"""The `Soxara-Signature` header (CONTRACT.md section 3), made here and nowhere else.

    Soxara-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(signing_secret, t + "." + raw_body)>

While an endpoint's secret is being rotated, both secrets sign: one `v1=` each, newest
first; a receiver accepts the delivery if any `v1` matches a secret it holds.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "Soxara-Signature"
# The event's id, so that a receiver can drop a delivery it has seen before without
# parsing the body first.
EVENT_ID_HEADER = "Soxara-Event-Id"


def v1(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def header(secrets: list[str], timestamp: int, body: bytes) -> str:
    """The header's value, a `v1=` for each of `secrets` (the current one first)."""
    if not secrets:
        raise ValueError("a signature needs at least one secret")
    return ",".join([f"t={timestamp}", *(f"v1={v1(s, timestamp, body)}" for s in secrets)])
