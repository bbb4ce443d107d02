"""What Soxara keeps of a payment: a per-method fee in basis points of the amount.

Configured by `SOXARA_PAYMENT_FEES` (JSON, method -> basis points, e.g.
`{"soxara_wallet": 100, "card": 390}`); a method not named keeps its default. The fee is
moved to the fees account in the same ledger entry that pays the merchant, so the
merchant's wallet only ever receives `net = amount - fee`.

A refund gives back the fee in proportion: after refunds totalling R of an amount A whose
fee was F, the fees account has returned F·R/A rounded down, and exactly F once R = A. A
full refund thus leaves the merchant and the fees account as they were before the payment.
"""

from __future__ import annotations

import json

METHODS = ("soxara_wallet", "mtn_momo", "orange_money", "card")
DEFAULT_BPS = {"soxara_wallet": 100, "mtn_momo": 250, "orange_money": 250, "card": 390}
MAX_BPS = 2000  # 20%: a typo such as 2500 for 2.5% is refused at start, not charged


def schedule(settings) -> dict[str, int]:
    """Each method's fee in basis points, from the settings (ValueError if malformed)."""
    bps = dict(DEFAULT_BPS)
    raw = getattr(settings, "payment_fees", None)
    if raw:
        given = json.loads(raw)
        if not isinstance(given, dict):
            raise ValueError("SOXARA_PAYMENT_FEES must be a JSON object: method -> basis points")
        for method, value in given.items():
            if method not in METHODS:
                raise ValueError(f"SOXARA_PAYMENT_FEES: unknown method {method!r}")
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_BPS:
                raise ValueError(f"SOXARA_PAYMENT_FEES: {method} must be whole basis points, 0–{MAX_BPS}")
            bps[method] = value
    return bps


def fee_for(settings, method: str, amount: int) -> int:
    """The fee on `amount` minor units paid by `method`: rounded half up, never above the amount."""
    bps = schedule(settings)[method]
    return min(amount, (amount * bps + 5000) // 10000)


def fee_returned(fee: int, amount: int, refunded: int) -> int:
    """How much of `fee` has gone back once `refunded` of `amount` is refunded."""
    if refunded >= amount:
        return fee
    return fee * refunded // amount
