"""Bills: the billers a bill can be paid to, and bill payments."""

from __future__ import annotations

from api.auth import KEY_OR_USER
from api.blueprint import v1
from api.endpoint import endpoint
from api.errors import ApiError
from api.pagination import ListQuery, page_of
from api.schemas.bills import BillerOut, BillPaymentIn, BillPaymentOut
from core.bills import bill_payments


def payer(ctx) -> bill_payments.Payer:
    p = ctx.principal
    if p.kind == "key":
        return bill_payments.Payer("merchant", p.merchant_id, p.livemode)
    return bill_payments.Payer("user", p.user_id, p.livemode)


@endpoint(v1, "GET", "/billers", auth=KEY_OR_USER, query=ListQuery, response=BillerOut, many=True,
          tags=["Bill payments"], errors=[401, 422])
def list_billers(ctx):
    """The billers of this deployment (LEC, LWSC and any configured), in the catalog's
    order, each with what its account numbers look like."""
    catalog = list(ctx.runtime.billers.catalog)
    cursor = ctx.args["cursor"]
    if cursor is not None and not cursor.isdigit():
        raise ApiError(422, "VALIDATION_ERROR", "cursor is not one this API gave out", {"field": "cursor"})
    # The cursor is a place in the catalog, which changes only with the configuration.
    start = int(cursor) if cursor is not None else 0
    rows = [(i, b) for i, b in enumerate(catalog)][start:start + ctx.args["limit"] + 1]
    page = page_of(rows, ctx.args["limit"], lambda row: row[0] + 1)
    page.items = [b for _, b in page.items]
    return page


@endpoint(v1, "POST", "/bill-payments", auth=KEY_OR_USER, scope="bill_payments:create", body=BillPaymentIn,
          response=BillPaymentOut, status=202, step_up=True, tags=["Bill payments"],
          errors=[400, 401, 403, 409, 415, 422, 503])
def create_bill_payment(ctx, body):
    """Pay a bill from the caller's wallet. The wallet is debited now (`pending`); a worker
    pays the biller over TIMM: `succeeded` (LEC: with the STS `token` and `units`) or
    `failed`, the money back in the wallet.

    A user's payment carries `X-Step-Up-Token`; a merchant's (from its wallet) needs the
    `bill_payments:create` scope. An account number of the wrong shape is 422
    `INVALID_ACCOUNT_NUMBER` naming an example (`details.example`); too little money, 422
    `INSUFFICIENT_FUNDS`, nothing moved.
    """
    return bill_payments.create(ctx.uow, ctx.runtime, payer=payer(ctx), biller=body["biller"],
                                account_number=body["account_number"], amount=body["amount"],
                                currency=body["currency"])


@endpoint(v1, "GET", "/bill-payments/<id:bill_payment_id>", auth=KEY_OR_USER, scope="bill_payments:create",
          response=BillPaymentOut, tags=["Bill payments"], errors=[401, 403, 404])
def get_bill_payment(ctx):
    """A bill payment and its status, for the payer who made it."""
    return bill_payments.get_for_payer(ctx.uow, payer(ctx), ctx.path["bill_payment_id"])


@endpoint(v1, "GET", "/bill-payments", auth=KEY_OR_USER, scope="bill_payments:create", query=ListQuery,
          response=BillPaymentOut, many=True, tags=["Bill payments"], errors=[401, 403, 422])
def list_bill_payments(ctx):
    """The caller's bill payments in the caller's mode, newest first."""
    rows = bill_payments.list_for_payer(ctx.uow, payer(ctx), limit=ctx.args["limit"] + 1,
                                        before_id=ctx.args["cursor"])
    return page_of(rows, ctx.args["limit"], lambda bp: bp.id)
