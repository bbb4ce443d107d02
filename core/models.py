"""Imports every module that defines tables, so `Base.metadata` is the whole schema."""

from core import conversations, idempotency, merchants, users  # noqa: F401
from core import deposits, events, ledger, transfers  # noqa: F401
from core import messaging, otp, pins, ratelimit, sessions  # noqa: F401
from core.db import Base

metadata = Base.metadata
