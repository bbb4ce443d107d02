"""Transfers: send money to any phone; claim money sent to yours."""

from __future__ import annotations

from api.auth import KEY_OR_USER, USER
from api.blueprint import v1
from api.endpoint import endpoint
from api.schemas.money import ClaimIn, TransferIn, TransferOut
from core.wallets import claims, transfers


def sender(ctx) -> transfers.Party:
    p = ctx.principal
    if p.kind == "key":
        return transfers.Party("merchant", p.merchant_id, p.livemode)
    return transfers.Party("user", p.user_id, p.livemode)


@endpoint(v1, "POST", "/transfers", auth=KEY_OR_USER, scope="transfers:create", body=TransferIn,
          response=TransferOut, status=201, step_up=True, tags=["Transfers"],
          errors=[400, 401, 403, 409, 415, 422])
def create_transfer(ctx, body):
    """Send money to a phone. A user is paid at once; a new number gets a claim link.

    A user's transfer carries `X-Step-Up-Token` (from /v1/auth/step-up); a merchant's
    (payout from its wallet) needs the `transfers:create` scope.
    """
    return transfers.send(ctx.uow, ctx.runtime, sender=sender(ctx), amount=body["amount"],
                          currency=body["currency"], to_phone=body["to_phone_number"],
                          note=body.get("note"))


@endpoint(v1, "GET", "/transfers/<id:transfer_id>", auth=KEY_OR_USER, scope="transfers:create",
          response=TransferOut, tags=["Transfers"], errors=[401, 403, 404])
def get_transfer(ctx):
    """A transfer, for its sender."""
    return transfers.get_for_sender(ctx.uow, sender(ctx), ctx.path["transfer_id"])


@endpoint(v1, "POST", "/transfers/claim", auth=USER, body=ClaimIn, response=TransferOut,
          tags=["Transfers"], errors=[400, 401, 404, 409, 415, 422])
def claim_transfer(ctx, body):
    """Claim money sent to your number (only the phone it was sent to can)."""
    return claims.claim(ctx.uow, ctx.runtime, user_id=ctx.principal.user_id,
                        livemode=ctx.principal.livemode, claim_code=body["claim_code"])
