"""The sandbox TIMM biller: test bill payments settle after about 5 s (CONTRACT.md §2).

It keeps nothing: every answer follows from the payment's own reference, account number,
amount and start time, so any process answers alike. `pay` answers pending; `status`
answers succeeded once SETTLES_AFTER has passed since the payment started. LEC (prepaid)
answers with a 20-digit STS token, the same for the same reference every time, and the
kWh it buys; other billers with no token.

Account numbers that behave otherwise, by how they end (the test tables' way):

| ends in | pay | status |
|---|---|---|
| `0000001` | fails `invalid_account_number` | failed |
| `0000002` | times out (pending, `timed_out`): TIMM took it but did not answer in time | succeeded at once |
| `0000003` | pending, however long you wait | succeeded as soon as it is asked |

e.g. LEC meters `04100000001`, `04100000002`, `04100000003`; LWSC accounts `20000001`…
A currency Soxara does not hold fails `unsupported_currency` (which of USD and LRD a
biller takes is the catalog's, checked before a payment is made).
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from core.amounts import CURRENCIES
from core.billers import DEFAULT_BILLERS, BillResult

SETTLES_AFTER = timedelta(seconds=5)
REJECTED, TIMES_OUT_ONCE, PENDING_UNTIL_ASKED = "0000001", "0000002", "0000003"
# Sandbox tariff for the kWh a token buys: minor units per kWh.
CENTS_PER_KWH = {"USD": 35, "LRD": 6500}
_PREPAID_ELECTRICITY = {b.code for b in DEFAULT_BILLERS if b.prepaid and b.category == "electricity"}


class SandboxTimm:
    name = "timm"
    sandbox = True

    def pay(self, *, reference, biller, account_number, amount, currency, now) -> BillResult:
        refused = self._refused(biller, account_number, currency)
        if refused is not None:
            return refused
        if account_number.endswith(TIMES_OUT_ONCE):
            # No answer in time, though TIMM took it: `status` finds it paid.
            return BillResult("pending", timed_out=True, message="TIMM did not answer in time")
        return BillResult("pending")

    def status(self, *, reference, biller, account_number, amount, currency, started_at, now) -> BillResult:
        refused = self._refused(biller, account_number, currency)
        if refused is not None:
            return refused
        if account_number.endswith((TIMES_OUT_ONCE, PENDING_UNTIL_ASKED)) or now - started_at >= SETTLES_AFTER:
            return self._paid(reference, biller, amount, currency)
        return BillResult("pending")

    def _refused(self, biller: str, account_number: str, currency: str) -> BillResult | None:
        if account_number.endswith(REJECTED):
            return BillResult("failed", failure_code="invalid_account_number",
                              message="the biller has no such account")
        if currency not in CURRENCIES:
            return BillResult("failed", failure_code="unsupported_currency",
                              message=f"{biller} does not take {currency}")
        return None

    def _paid(self, reference: str, biller: str, amount: int, currency: str) -> BillResult:
        if biller not in _PREPAID_ELECTRICITY:
            return BillResult("succeeded")
        digits = int.from_bytes(hashlib.sha256(f"sandbox-sts:{reference}".encode()).digest(), "big")
        kwh_tenths = amount * 10 // CENTS_PER_KWH[currency]
        return BillResult("succeeded", token=f"{digits % 10**20:020d}",
                          units=f"{kwh_tenths // 10}.{kwh_tenths % 10} kWh")
