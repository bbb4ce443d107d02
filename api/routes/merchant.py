"""The calling merchant: its profile and its API keys."""

from __future__ import annotations

from dataclasses import dataclass

from api.auth import KEY
from api.blueprint import v1
from api.endpoint import endpoint
from api.pagination import ListQuery, page_of
from api.schemas.merchants import ApiKeyCreatedOut, ApiKeyOut, MerchantOut, MintKeyIn
from core.merchants import keys, merchants


@dataclass
class _Profile:
    id: str
    name: str
    livemode: bool
    scopes: list
    settlement_schedule: str
    created_at: object


@endpoint(v1, "GET", "/merchant", auth=KEY, scope="merchant:read", response=MerchantOut,
          tags=["Merchant"], errors=[401, 403])
def get_merchant(ctx):
    """The merchant behind the calling key, with that key's scopes and mode."""
    m = merchants.get_merchant(ctx.uow, ctx.principal.merchant_id)
    return _Profile(m.id, m.name, ctx.principal.livemode, ctx.principal.scopes,
                    m.settlement_schedule, m.created_at)


@endpoint(v1, "GET", "/merchant/api-keys", auth=KEY, scope="api_keys:manage", query=ListQuery,
          response=ApiKeyOut, many=True, tags=["Merchant"], errors=[401, 403, 422])
def list_api_keys(ctx):
    """The merchant's API keys in the calling key's mode, newest first (never the secrets)."""
    p = ctx.principal
    rows = keys.list_keys(ctx.uow, p.merchant_id, p.livemode, limit=ctx.args["limit"] + 1,
                          before_id=ctx.args["cursor"])
    return page_of(rows, ctx.args["limit"], lambda k: k.id)


def _may_grant(ctx, body) -> None:
    keys.check_grant(ctx.principal.scopes, body.get("scopes"))


@endpoint(v1, "POST", "/merchant/api-keys", auth=KEY, scope="api_keys:manage", body=MintKeyIn,
          response=ApiKeyCreatedOut, status=201, tags=["Merchant"], errors=[400, 401, 403, 409, 415, 422],
          authorize=_may_grant)
def mint_api_key(ctx, body):
    """Mint a key in the calling key's mode, with scopes the calling key holds itself
    (else 403 `FORBIDDEN`, `details.missing_scopes`). The full key is in this response only."""
    minted = keys.mint_key_by(ctx.uow, ctx.runtime.secret_key, ctx.principal.key_id,
                              scopes=body.get("scopes"), name=body.get("name"))
    minted.key.key = minted.secret  # for the response schema only; never stored
    return minted.key


@endpoint(v1, "POST", "/merchant/api-keys/<id:key_id>/revoke", auth=KEY, scope="api_keys:manage",
          response=ApiKeyOut, tags=["Merchant"], errors=[400, 401, 403, 404, 409, 415, 422])
def revoke_api_key(ctx):
    """Revoke a key: it fails from the very next request."""
    p = ctx.principal
    return keys.revoke_key(ctx.uow, p.merchant_id, p.livemode, ctx.path["key_id"])
