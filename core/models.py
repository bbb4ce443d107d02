"""Imports every module that defines tables, so `Base.metadata` is the whole schema."""

from core import (  # noqa: F401
    conversations,
    deposits,
    events,
    idempotency,
    ledger,
    merchants,
    messaging,
    otp,
    pins,
    ratelimit,
    sessions,
    transfers,
    users,
)
from core.db import Base

metadata = Base.metadata
