"""Webhook endpoints and events as the API shows them.

The schemas check only types; core decides what a valid URL or event list is
(core/webhooks/endpoints.py), so the API and any other caller refuse exactly the same.
"""

from __future__ import annotations

import json
from datetime import UTC

from marshmallow import Schema, fields, validate

from api.pagination import ListQuery
from api.schemas.fields import Timestamp
from core.events.events import TYPES
from core.webhooks.endpoints import MAX_DESCRIPTION
from core.webhooks.urls import MAX_URL

_EVENT_TYPES = ["*", *sorted(TYPES)]


class EndpointIn(Schema):
    url = fields.String(required=True, validate=validate.Length(min=1, max=MAX_URL),
                        metadata={"example": "https://shop.example/soxara/webhooks",
                                  "description": "http or https; in live mode a public address"})
    events = fields.List(fields.String(metadata={"enum": _EVENT_TYPES}), required=True,
                         validate=validate.Length(min=1, max=len(_EVENT_TYPES)),
                         metadata={"description": 'the event types to receive, or ["*"] for all'})
    description = fields.String(allow_none=True, validate=validate.Length(max=MAX_DESCRIPTION))
    enabled = fields.Boolean(load_default=True)


class EndpointPatch(Schema):
    url = fields.String(validate=validate.Length(min=1, max=MAX_URL))
    events = fields.List(fields.String(metadata={"enum": _EVENT_TYPES}),
                         validate=validate.Length(min=1, max=len(_EVENT_TYPES)))
    description = fields.String(allow_none=True, validate=validate.Length(max=MAX_DESCRIPTION))
    enabled = fields.Boolean()


class EndpointOut(Schema):
    id = fields.String(required=True, metadata={"example": "we_0ABCdef"})
    object = fields.Constant("webhook_endpoint")
    url = fields.String(required=True)
    events = fields.List(fields.String(), attribute="event_types", required=True)
    description = fields.String(allow_none=True)
    enabled = fields.Boolean(required=True)
    disabled_reason = fields.String(allow_none=True, metadata={
        "description": "why Soxara disabled the endpoint (every delivery failing for 3 days)"})
    livemode = fields.Boolean(required=True)
    previous_secret_expires_at = Timestamp(allow_none=True, metadata={
        "description": "after a rotation: until when the previous secret also signs"})
    created_at = Timestamp(required=True)
    updated_at = Timestamp(required=True)


class EndpointWithSecretOut(EndpointOut):
    signing_secret = fields.String(required=True, metadata={
        "example": "whsec_…", "description": "signs every delivery; shown in this response only"})


class DeletedOut(Schema):
    id = fields.String(required=True)
    object = fields.Constant("webhook_endpoint")
    deleted = fields.Constant(True)


class EventsQuery(ListQuery):
    type = fields.String(validate=validate.OneOf(sorted(TYPES)), metadata={"description": "only this type"})
    created_after = fields.AwareDateTime(default_timezone=UTC, metadata={"description": "ISO-8601, inclusive"})
    created_before = fields.AwareDateTime(default_timezone=UTC, metadata={"description": "ISO-8601, inclusive"})


class EventOut(Schema):
    id = fields.String(required=True, metadata={"example": "evt_0ABCdef"})
    object = fields.Constant("event")
    type = fields.String(required=True)
    livemode = fields.Boolean(required=True)
    created_at = Timestamp(required=True)
    data = fields.Function(lambda e: {"object": json.loads(e.data)}, metadata={
        "type": "object", "description": "`object`: the object as it was when the event happened"})


class DeliveryOut(Schema):
    endpoint = fields.String(attribute="endpoint_id", required=True)
    status = fields.String(required=True, metadata={"enum": ["pending", "succeeded", "failed"]})
    attempts = fields.Integer(required=True)
    next_attempt_at = Timestamp(allow_none=True)
    succeeded_at = Timestamp(allow_none=True)


class AttemptOut(Schema):
    endpoint = fields.String(attribute="endpoint_id", required=True)
    attempted_at = Timestamp(required=True)
    succeeded = fields.Boolean(required=True)
    status_code = fields.Integer(allow_none=True)
    latency_ms = fields.Integer(required=True)
    response_body = fields.String(attribute="answer", metadata={"description": "the answer's first 1 KB"})
    error = fields.String(allow_none=True)


class EventDetailOut(EventOut):
    deliveries = fields.List(fields.Nested(DeliveryOut), required=True)
    delivery_attempts = fields.List(fields.Nested(AttemptOut), required=True,
                                    metadata={"description": "newest first, the last 100"})
