"""Imports every module that defines tables, so `Base.metadata` is the whole schema."""

from core import idempotency, ratelimit  # noqa: F401
from core.db import Base
from core.events import events  # noqa: F401
from core.identity import otp, pins, sessions, users  # noqa: F401
from core.merchants import merchants  # noqa: F401
from core.messaging import conversations, outbox  # noqa: F401
from core.wallets import deposits, ledger, transfers  # noqa: F401

metadata = Base.metadata
