"""Payments: a merchant asks a customer to pay; the customer (or the merchant for them) confirms."""

from __future__ import annotations

from api.auth import KEY, KEY_OR_USER
from api.blueprint import v1
from api.endpoint import endpoint
from api.pagination import ListQuery, page_of
from api.schemas.payments import (
    ConfirmIn,
    PaymentCreatedOut,
    PaymentIn,
    PaymentOut,
    PaymentsQuery,
    RefundOut,
)
from core.errors import InvalidInput, NotFound
from core.payments import pay_links, payments, refunds
from core.rails.cards import Card


@endpoint(v1, "POST", "/payments", auth=KEY, scope="payments:create", body=PaymentIn, response=PaymentCreatedOut,
          status=201, tags=["Payments"], errors=[400, 401, 403, 409, 415, 422])
def create_payment(ctx, body):
    """Ask a customer to pay: `requires_payment_method`, with a `client_secret` and the
    hosted pay page's `pay_url` shown only here; `send_link: true` also sends the page's
    link to `customer_phone` by WhatsApp. With `confirm: true` and a `payment_method`,
    confirmed in the same request (as `POST /v1/payments/{id}/confirm` would; a refusal
    then creates nothing)."""
    p, secret = payments.create(ctx.uow, ctx.runtime, merchant_id=ctx.principal.merchant_id,
                                livemode=ctx.principal.livemode, amount=body["amount"], currency=body["currency"],
                                description=body.get("description"), customer_phone=body.get("customer_phone"),
                                metadata=body.get("metadata"))
    if body.get("confirm"):
        p = payments.confirm(ctx.uow, ctx.runtime, p, _method(body))
    if body.get("send_link"):
        pay_links.send_pay_link(ctx.uow, ctx.runtime, p, secret)
    return {**payments.snapshot(p), "client_secret": secret,
            "pay_url": pay_links.pay_url(ctx.runtime.settings, p.id, secret)}


@endpoint(v1, "GET", "/payments/<id:payment_id>", auth=KEY, scope="payments:read", response=PaymentOut,
          tags=["Payments"], errors=[401, 403, 404])
def get_payment(ctx):
    """A payment: status, amount, fee, net, amount refunded."""
    p = ctx.principal
    return payments.snapshot(payments.get_for_merchant(ctx.uow, p.merchant_id, p.livemode, ctx.path["payment_id"]),
                             ctx.runtime.settings.public_url)


@endpoint(v1, "GET", "/payments", auth=KEY, scope="payments:read", query=PaymentsQuery, response=PaymentOut,
          many=True, tags=["Payments"], errors=[401, 403, 422])
def list_payments(ctx):
    """The merchant's payments in the key's mode, newest first; filter by `status`,
    `customer` (the customer_phone) and `created_gte`/`created_lte`."""
    p, a = ctx.principal, ctx.args
    rows = payments.list_for_merchant(ctx.uow, p.merchant_id, p.livemode, limit=a["limit"] + 1,
                                      before_id=a["cursor"], status=a.get("status"),
                                      customer_phone=a.get("customer"), created_gte=a.get("created_gte"),
                                      created_lte=a.get("created_lte"))
    page = page_of(rows, a["limit"], lambda x: x.id)
    page.items = [payments.snapshot(x, ctx.runtime.settings.public_url) for x in page.items]
    return page


@endpoint(v1, "POST", "/payments/<id:payment_id>/cancel", auth=KEY, scope="payments:create", response=PaymentOut,
          tags=["Payments"], errors=[400, 401, 403, 404, 409])
def cancel_payment(ctx):
    """Cancel a payment before it completes (409 `INVALID_STATE` after, or while a
    mobile-money request is with the customer)."""
    p = ctx.principal
    return payments.snapshot(payments.cancel(ctx.uow, ctx.runtime, merchant_id=p.merchant_id, livemode=p.livemode,
                                             payment_id=ctx.path["payment_id"]))


def _method(body) -> payments.PaymentMethod:
    m = body["payment_method"]
    card = m.get("card")
    return payments.PaymentMethod(
        type=m["type"], phone=m.get("phone_number"),
        card=Card(number=card["number"], exp_month=card["exp_month"], exp_year=card["exp_year"], cvc=card["cvc"])
        if card else None)


@endpoint(v1, "POST", "/payments/<id:payment_id>/confirm", auth=KEY_OR_USER, scope="payments:create",
          body=ConfirmIn, response=PaymentOut, step_up=True, tags=["Payments"],
          errors=[400, 401, 403, 404, 409, 415, 422, 503])
def confirm_payment(ctx, body):
    """Pay with a method. `soxara_wallet`: the customer approves in WhatsApp with the PIN
    (`requires_action`; a sandbox buyer on a test key, or a person confirming with their
    own token and `X-Step-Up-Token`, pays at once). `mtn_momo`/`orange_money`:
    `requires_action` while the customer approves on their phone. `card` (test mode, test
    cards): `processing`, charged right after this request commits.

    A key may send the `client_secret` (checked when sent); a user must.
    """
    pr = ctx.principal
    if pr.kind == "key":
        p = payments.locked_for_merchant(ctx.uow, pr.merchant_id, pr.livemode, ctx.path["payment_id"])
        if "client_secret" in body:
            try:
                payments.get_with_secret(ctx.uow, ctx.runtime, p.id, body["client_secret"])
            except NotFound:
                raise InvalidInput("client_secret is not this payment's", field="client_secret") from None
        payer = None
    else:
        p = payments.get_with_secret(ctx.uow, ctx.runtime, ctx.path["payment_id"], body.get("client_secret"),
                                     livemode=pr.livemode)
        p = payments.locked(ctx.uow, p.id)
        payer = pr.user_id
    return payments.snapshot(payments.confirm(ctx.uow, ctx.runtime, p, _method(body), payer_user_id=payer))


@endpoint(v1, "GET", "/payments/<id:payment_id>/refunds", auth=KEY, scope="payments:read",
          query=ListQuery, response=RefundOut, many=True, tags=["Refunds"], errors=[401, 403, 404, 422])
def list_payment_refunds(ctx):
    """A payment's refunds, newest first."""
    p, a = ctx.principal, ctx.args
    rows = refunds.list_for_payment(ctx.uow, p.merchant_id, p.livemode, ctx.path["payment_id"],
                                    limit=a["limit"] + 1, before_id=a["cursor"])
    page = page_of(rows, a["limit"], lambda r: r.id)
    page.items = [refunds.snapshot(r) for r in page.items]
    return page
