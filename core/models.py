"""The whole schema: imports every module that defines tables, so `Base.metadata` holds
them all (alembic's environment and the schema tests read it from here).

Each table's model lives in the module of its concept (User in identity/users.py, Wallet
in wallets/wallets.py); a module that gains a table is added below, or alembic would
take the table for one that was dropped (tests/integration/test_migrations.py checks).
"""

from core import idempotency, ratelimit  # noqa: F401  (the kernel's tables)
from core.bills import bill_payments  # noqa: F401
from core.db import Base
from core.events import events  # noqa: F401
from core.identity import otp, pins, sessions, staff, users  # noqa: F401
from core.merchants import keys, merchants  # noqa: F401
from core.messaging import conversations, outbox  # noqa: F401
from core.payments import payments, refunds  # noqa: F401
from core.wallets import deposits, ledger, transfers, wallets  # noqa: F401
from core.webhooks import deliveries, endpoints  # noqa: F401

metadata = Base.metadata
