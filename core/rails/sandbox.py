"""Sandbox rails: the contract's test tables, exactly.

MTN MoMo `+231881111000` succeeds, `…001` fails `user_rejected`, `…002` times out,
`…003` fails `INSUFFICIENT_FUNDS`, any other well-formed number succeeds after 5 s.
Orange Money the same with 771 for 881.

Refunds (not in the contract's tables; additive): a refund to any number succeeds at once,
except to `…004` (`+231881111004`, `+231771111004`), which fails `account_closed`; a
collection from `…004` succeeds after 5 s like any other number, so a payment from it can
be refunded and the failure seen.
"""

from __future__ import annotations

from datetime import timedelta

from core.rails import RailResult

DELAY = timedelta(seconds=5)
MAGIC_PREFIX = {"mtn_momo": "+231881111", "orange_money": "+231771111"}


class SandboxMobileMoney:
    sandbox = True

    def __init__(self, method: str):
        self.name = method
        self._prefix = MAGIC_PREFIX[method]

    @staticmethod
    def is_test_number(phone: str) -> bool:
        """A number of the sandbox's test table (never a real customer's)."""
        return any(phone.startswith(prefix) and len(phone) == len(prefix) + 3
                   for prefix in MAGIC_PREFIX.values())

    def _magic(self, phone: str) -> str | None:
        if phone.startswith(self._prefix) and len(phone) == len(self._prefix) + 3:
            return phone[-3:]
        return None

    def start_collection(self, *, reference, phone, amount, currency, now) -> RailResult:
        magic = self._magic(phone)
        if magic == "000":
            return RailResult("succeeded")
        if magic == "001":
            return RailResult("failed", "user_rejected", "the customer rejected the request")
        if magic == "003":
            return RailResult("failed", "INSUFFICIENT_FUNDS", "the mobile money account has too little")
        return RailResult("pending")

    def collection_status(self, *, reference, phone, started_at, now) -> RailResult:
        magic = self._magic(phone)
        if magic == "002":
            return RailResult("pending")  # never answers: our timeout decides
        if magic in ("000", "001", "003"):
            return self.start_collection(reference=reference, phone=phone, amount=0, currency="", now=now)
        return RailResult("succeeded") if now - started_at >= DELAY else RailResult("pending")

    def start_refund(self, *, reference, collection_reference, phone, amount, currency, now) -> RailResult:
        if self._magic(phone) == "004":
            return RailResult("failed", "account_closed", "the mobile money account cannot receive money")
        return RailResult("succeeded")

    def refund_status(self, *, reference, phone, started_at, now) -> RailResult:
        return self.start_refund(reference=reference, collection_reference="", phone=phone, amount=0,
                                 currency="", now=now)
