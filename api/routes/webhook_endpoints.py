"""Webhook endpoints: where a merchant's events are POSTed, signed."""

from __future__ import annotations

from api.auth import KEY
from api.blueprint import v1
from api.endpoint import endpoint
from api.pagination import ListQuery, page_of
from api.schemas.webhooks import (
    DeletedOut,
    EndpointIn,
    EndpointOut,
    EndpointPatch,
    EndpointWithSecretOut,
)
from core.webhooks import endpoints

SCOPE = "webhooks:manage"
TAGS = ["Webhooks"]


class _ShownOnce:
    """The endpoint with its new secret, for the response schema only (stored sealed)."""

    def __init__(self, made: endpoints.WithSecret):
        self._endpoint = made.endpoint
        self.signing_secret = made.secret

    def __getattr__(self, name: str):
        return getattr(self._endpoint, name)


def _shown_once(made: endpoints.WithSecret) -> _ShownOnce:
    return _ShownOnce(made)


@endpoint(v1, "POST", "/webhook-endpoints", auth=KEY, scope=SCOPE, body=EndpointIn, response=EndpointWithSecretOut,
          status=201, tags=TAGS, errors=[400, 401, 403, 409, 415, 422])
def create_endpoint(ctx, body):
    """Create an endpoint in the calling key's mode. `signing_secret` is in this response only.

    In live mode the URL must be on the internet: loopback, private, link-local and
    metadata addresses are refused here, and again at each delivery for what the name
    then resolves to.
    """
    p = ctx.principal
    return _shown_once(endpoints.create(ctx.uow, ctx.runtime.secret_key, merchant_id=p.merchant_id,
                                        livemode=p.livemode, url=body["url"], events=body["events"],
                                        description=body.get("description"), enabled=body["enabled"]))


@endpoint(v1, "GET", "/webhook-endpoints", auth=KEY, scope=SCOPE, query=ListQuery, response=EndpointOut,
          many=True, tags=TAGS, errors=[401, 403, 422])
def list_endpoints(ctx):
    """The merchant's endpoints in the calling key's mode, newest first."""
    p = ctx.principal
    rows = endpoints.list_for(ctx.uow, p.merchant_id, p.livemode, limit=ctx.args["limit"] + 1,
                              before_id=ctx.args["cursor"])
    return page_of(rows, ctx.args["limit"], lambda e: e.id)


@endpoint(v1, "GET", "/webhook-endpoints/<id:endpoint_id>", auth=KEY, scope=SCOPE, response=EndpointOut,
          tags=TAGS, errors=[401, 403, 404])
def get_endpoint(ctx):
    """One endpoint (never its secret)."""
    p = ctx.principal
    return endpoints.get(ctx.uow, p.merchant_id, p.livemode, ctx.path["endpoint_id"])


@endpoint(v1, "PATCH", "/webhook-endpoints/<id:endpoint_id>", auth=KEY, scope=SCOPE, body=EndpointPatch,
          response=EndpointOut, tags=TAGS, errors=[400, 401, 403, 404, 409, 415, 422])
def update_endpoint(ctx, body):
    """Change the URL, events, description or enabled flag. Enabling an endpoint Soxara
    disabled starts its failure count afresh; deliveries still within their retries resume."""
    p = ctx.principal
    return endpoints.update(ctx.uow, p.merchant_id, p.livemode, ctx.path["endpoint_id"], body)


@endpoint(v1, "DELETE", "/webhook-endpoints/<id:endpoint_id>", auth=KEY, scope=SCOPE, response=DeletedOut,
          tags=TAGS, errors=[400, 401, 403, 404, 409])
def delete_endpoint(ctx):
    """Delete an endpoint: nothing more is sent to it."""
    p = ctx.principal
    return endpoints.delete(ctx.uow, p.merchant_id, p.livemode, ctx.path["endpoint_id"])


@endpoint(v1, "POST", "/webhook-endpoints/<id:endpoint_id>/rotate-secret", auth=KEY, scope=SCOPE,
          response=EndpointWithSecretOut, tags=TAGS, errors=[400, 401, 403, 404, 409, 415, 422])
def rotate_secret(ctx):
    """A new signing secret, in this response only. For 24 hours deliveries carry two
    `v1=` signatures, the new secret's and the previous one's, so receivers can switch
    without missing a delivery."""
    p = ctx.principal
    return _shown_once(endpoints.rotate_secret(ctx.uow, ctx.runtime.secret_key, p.merchant_id, p.livemode,
                                               ctx.path["endpoint_id"]))
