"""Events: what happened to a merchant's objects in the last 30 days, and their deliveries."""

from __future__ import annotations

from api.auth import KEY
from api.blueprint import v1
from api.endpoint import endpoint
from api.pagination import page_of
from api.schemas.webhooks import EventDetailOut, EventOut, EventsQuery
from core.events import events
from core.webhooks import deliveries

SCOPE = "webhooks:manage"
TAGS = ["Events"]


@endpoint(v1, "GET", "/events", auth=KEY, scope=SCOPE, query=EventsQuery, response=EventOut, many=True,
          tags=TAGS, errors=[401, 403, 422])
def list_events(ctx):
    """The merchant's events in the calling key's mode from the last 30 days, newest first;
    filtered by `type` and by creation time."""
    p, a = ctx.principal, ctx.args
    rows = events.list_for(ctx.uow, p.merchant_id, p.livemode, limit=a["limit"] + 1, before_id=a["cursor"],
                           type_=a.get("type"), created_after=a.get("created_after"),
                           created_before=a.get("created_before"))
    return page_of(rows, a["limit"], lambda e: e.id)


def _detail(uow, ev):
    ev.deliveries = deliveries.deliveries_of(uow, ev.id)
    ev.delivery_attempts = deliveries.attempts_of(uow, ev.id)
    return ev


@endpoint(v1, "GET", "/events/<id:event_id>", auth=KEY, scope=SCOPE, response=EventDetailOut, tags=TAGS,
          errors=[401, 403, 404])
def get_event(ctx):
    """One event, with its deliveries to the merchant's endpoints and every attempt made."""
    p = ctx.principal
    return _detail(ctx.uow, events.get_for(ctx.uow, p.merchant_id, p.livemode, ctx.path["event_id"]))


@endpoint(v1, "POST", "/events/<id:event_id>/redeliver", auth=KEY, scope=SCOPE, response=EventDetailOut,
          status=202, tags=TAGS, errors=[400, 401, 403, 404, 409, 415, 422])
def redeliver_event(ctx):
    """Send the event again, now, to every enabled endpoint that listens for its type
    (409 `INVALID_STATE` when none does)."""
    p = ctx.principal
    ev = deliveries.redeliver(ctx.uow, ctx.runtime.jobs, p.merchant_id, p.livemode, ctx.path["event_id"])
    return _detail(ctx.uow, ev)
