"""Refunds: money from a succeeded payment back to where it came from."""

from __future__ import annotations

from api.auth import KEY
from api.blueprint import v1
from api.endpoint import endpoint
from api.schemas.payments import RefundIn, RefundOut
from core.payments import refunds


@endpoint(v1, "POST", "/refunds", auth=KEY, scope="refunds:create", body=RefundIn, response=RefundOut, status=201,
          tags=["Refunds"], errors=[400, 401, 403, 404, 409, 415, 422])
def create_refund(ctx, body):
    """Refund all that is left of a payment, or `amount` of it. Partial refunds may repeat;
    together they never exceed the payment (422 `REFUND_EXCEEDS_PAYMENT`). A wallet
    payment is refunded at once (`succeeded`); MoMo, Orange and card go back over the rail
    (`pending`, then `succeeded`, or `failed` with the money back in the merchant's wallet)."""
    p = ctx.principal
    return refunds.snapshot(refunds.create(ctx.uow, ctx.runtime, merchant_id=p.merchant_id, livemode=p.livemode,
                                           payment_id=body["payment"], amount=body.get("amount"),
                                           reason=body.get("reason")))


@endpoint(v1, "GET", "/refunds/<id:refund_id>", auth=KEY, scope="payments:read", response=RefundOut,
          tags=["Refunds"], errors=[401, 403, 404])
def get_refund(ctx):
    """A refund and its status."""
    p = ctx.principal
    return refunds.snapshot(refunds.get_for_merchant_refund(ctx.uow, p.merchant_id, p.livemode,
                                                            ctx.path["refund_id"]))
