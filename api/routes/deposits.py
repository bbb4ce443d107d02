"""Deposits: cash-in from MTN MoMo or Orange Money."""

from __future__ import annotations

from api.auth import USER
from api.blueprint import v1
from api.endpoint import endpoint
from api.schemas.money import DepositIn, DepositOut
from core.wallets import deposits


@endpoint(v1, "POST", "/deposits", auth=USER, body=DepositIn, response=DepositOut, status=202,
          tags=["Deposits"], errors=[400, 401, 409, 415, 422, 503])
def create_deposit(ctx, body):
    """Add money from mobile money. Starts `pending`; the wallet is credited on `succeeded`.

    In production a rail without real credentials carries no live money: 503
    `SERVICE_UNAVAILABLE` ("mtn_momo is not available for live payments"), nothing written.
    """
    return deposits.create(ctx.uow, ctx.runtime, user_id=ctx.principal.user_id, amount=body["amount"],
                           currency=body["currency"], method=body["method"],
                           phone_number=body["phone_number"], livemode=ctx.principal.livemode)


@endpoint(v1, "GET", "/deposits/<id:deposit_id>", auth=USER, response=DepositOut, tags=["Deposits"],
          errors=[401, 404])
def get_deposit(ctx):
    """A deposit and its status."""
    return deposits.get_for_user(ctx.uow, ctx.principal.user_id, ctx.principal.livemode,
                                 ctx.path["deposit_id"])
