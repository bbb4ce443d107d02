"""Wallets: a user's or a merchant's balances and what moved them."""

from __future__ import annotations

from api.auth import KEY_OR_USER
from api.blueprint import v1
from api.endpoint import endpoint
from api.pagination import ListQuery, page_of
from api.schemas.money import TransactionOut, WalletOut
from core.wallets import ledger, wallets


def owner(ctx) -> tuple[str, str]:
    p = ctx.principal
    return (wallets.MERCHANT, p.merchant_id) if p.kind == "key" else (wallets.USER, p.user_id)


@endpoint(v1, "GET", "/wallets", auth=KEY_OR_USER, scope="wallets:read", query=ListQuery, response=WalletOut,
          many=True, tags=["Wallets"], errors=[401, 403, 422])
def list_wallets(ctx):
    """The caller's USD and LRD wallets in the caller's mode, newest first, paged like
    every list (there are at most two)."""
    kind, oid = owner(ctx)
    items = wallets.list_for(ctx.uow, kind, oid, ctx.principal.livemode)
    ctx.uow.commit()  # a wallet seen for the first time was just created
    cursor = ctx.args["cursor"]
    newest_first = sorted((w for w in items if cursor is None or w.id < cursor), key=lambda w: w.id, reverse=True)
    return page_of(newest_first[:ctx.args["limit"] + 1], ctx.args["limit"], lambda w: w.id)


@endpoint(v1, "GET", "/wallets/<id:wallet_id>", auth=KEY_OR_USER, scope="wallets:read",
          response=WalletOut, tags=["Wallets"], errors=[401, 403, 404])
def get_wallet(ctx):
    """One wallet and its balance."""
    kind, oid = owner(ctx)
    return wallets.get_owned(ctx.uow, kind, oid, ctx.principal.livemode, ctx.path["wallet_id"])


@endpoint(v1, "GET", "/wallets/<id:wallet_id>/transactions", auth=KEY_OR_USER, scope="wallets:read",
          query=ListQuery, response=TransactionOut, many=True, tags=["Wallets"], errors=[401, 403, 404, 422])
def list_transactions(ctx):
    """A wallet's transactions, newest first: signed amount, balance after, type, object."""
    kind, oid = owner(ctx)
    w = wallets.get_owned(ctx.uow, kind, oid, ctx.principal.livemode, ctx.path["wallet_id"])
    cursor = ctx.args["cursor"]
    before = int(cursor) if cursor and cursor.isdigit() else None
    if cursor and before is None:
        from api.errors import ApiError

        raise ApiError(422, "VALIDATION_ERROR", "cursor is not one this API gave out", {"field": "cursor"})
    rows = ledger.transactions(ctx.uow, w.id, limit=ctx.args["limit"] + 1, before_seq=before)
    return page_of(rows, ctx.args["limit"], lambda p: p.seq)
