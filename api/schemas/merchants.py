from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.schemas.fields import Timestamp
from core.merchants.keys import SCOPES


class MerchantOut(Schema):
    id = fields.String(required=True, metadata={"example": "mer_0ABCdef"})
    object = fields.Constant("merchant")
    name = fields.String(required=True)
    livemode = fields.Boolean(required=True)
    scopes = fields.List(fields.String(), required=True,
                         metadata={"description": "the calling key's scopes"})
    settlement_schedule = fields.String(required=True, metadata={"enum": ["daily", "weekly", "manual"]})
    created_at = Timestamp(required=True)


class ApiKeyOut(Schema):
    id = fields.String(required=True)
    object = fields.Constant("api_key")
    prefix = fields.String(required=True, metadata={"example": "sxm_test_AbCdEfGh"})
    livemode = fields.Boolean(required=True)
    name = fields.String(allow_none=True)
    scopes = fields.List(fields.String(), attribute="scope_list", required=True)
    status = fields.Method("_status", metadata={"enum": ["active", "revoked"]})
    created_at = Timestamp(required=True)
    revoked_at = Timestamp(allow_none=True)

    def _status(self, key) -> str:
        return "revoked" if key.revoked_at else "active"


class ApiKeyCreatedOut(ApiKeyOut):
    key = fields.String(required=True, metadata={"description": "the full key; shown this once"})


class MintKeyIn(Schema):
    scopes = fields.List(fields.String(validate=validate.OneOf(SCOPES)),
                         validate=validate.Length(min=1, max=len(SCOPES)),
                         metadata={"description": "default: payments:create, payments:read"})
    name = fields.String(validate=validate.Length(min=1, max=200))
