"""Hashing and sealing of secrets. Every secret we keep is kept as a hash or sealed.

- High-entropy secrets (API keys, refresh tokens, claim codes) get a keyed fast hash
  (HMAC-SHA256 under a key derived from SOXARA_SECRET_KEY): brute force is hopeless
  against 190 random bits, and a slow hash would cost every request.
- Low-entropy secrets (6-digit OTPs, 4–6 digit PINs) get argon2id, so a stolen table
  does not give them up, plus attempt limits, which are what actually protect them.
- Data that must be given back later (a stored idempotent response that holds a
  freshly minted key) is sealed with Fernet under a derived key and purged after 24 h.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken

_ph = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


def derive_key(secret_key: str, purpose: str) -> bytes:
    return hmac.new(secret_key.encode(), b"soxara:" + purpose.encode(), hashlib.sha256).digest()


def keyed_hash(secret_key: str, purpose: str, value: str) -> str:
    return hmac.new(derive_key(secret_key, purpose), value.encode(), hashlib.sha256).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def slow_hash(value: str) -> str:
    return _ph.hash(value)


def slow_verify(hashed: str, value: str) -> bool:
    try:
        return _ph.verify(hashed, value)
    except (VerificationError, InvalidHashError):
        return False


class Sealer:
    """`purpose` keeps what is sealed for one use unopenable by another's key."""

    def __init__(self, secret_key: str, purpose: str = "seal"):
        self._f = Fernet(base64.urlsafe_b64encode(derive_key(secret_key, purpose)))

    def seal(self, data: bytes) -> bytes:
        return self._f.encrypt(data)

    def open(self, token: bytes) -> bytes | None:
        try:
            return self._f.decrypt(token)
        except InvalidToken:
            return None
