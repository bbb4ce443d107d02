"""Wallets, their transactions, transfers and deposits as the API shows them."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.schemas.fields import Amount, Currency, Phone, Timestamp
from core.amounts import CURRENCIES


class OwnerOut(Schema):
    type = fields.String(required=True, metadata={"enum": ["user", "merchant"]})
    id = fields.String(required=True)


class WalletOut(Schema):
    id = fields.String(required=True, metadata={"example": "wal_0ABC"})
    object = fields.Constant("wallet")
    currency = fields.String(required=True, metadata={"enum": list(CURRENCIES)})
    balance = fields.Integer(required=True, metadata={"description": "minor units"})
    livemode = fields.Boolean(required=True)
    owner = fields.Function(lambda a: {"type": a.owner_type, "id": a.owner_id}, metadata={"type": "object"})
    created_at = Timestamp(required=True)


class TransactionOut(Schema):
    id = fields.String(required=True, metadata={"example": "txn_0ABC"})
    object = fields.Constant("transaction")
    wallet = fields.String(attribute="account_id", required=True)
    amount = fields.Integer(required=True, metadata={"description": "signed minor units: + in, - out"})
    balance_after = fields.Integer(required=True)
    type = fields.String(attribute="kind", required=True,
                         metadata={"description": "transfer, transfer_hold, claim, claim_return, deposit, adjustment, sandbox_funding…"})
    object_type = fields.String(attribute="obj_type", required=True)
    object_id = fields.String(attribute="obj_id", required=True, metadata={"description": "the tr_/dep_/… it belongs to"})
    created_at = Timestamp(required=True)


class TransferIn(Schema):
    amount = Amount(required=True)
    currency = Currency()
    to_phone_number = Phone(required=True)
    note = fields.String(validate=validate.Length(max=200))


class ClaimIn(Schema):
    claim_code = fields.String(required=True, validate=validate.Length(min=1, max=40))


class SenderOut(Schema):
    type = fields.String(required=True)
    id = fields.String(required=True)


class TransferOut(Schema):
    id = fields.String(required=True, metadata={"example": "tr_0ABC"})
    object = fields.Constant("transfer")
    livemode = fields.Boolean(required=True)
    amount = fields.Integer(required=True)
    currency = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": ["succeeded", "pending_claim", "claimed", "expired"]})
    to_phone_number = fields.String(required=True)
    recipient = fields.String(attribute="recipient_user_id", allow_none=True,
                              metadata={"description": "usr_ id once the money reached a user"})
    sender = fields.Function(lambda t: {"type": t.sender_type, "id": t.sender_id}, metadata={"type": "object"})
    note = fields.String(allow_none=True)
    claim_expires_at = Timestamp(allow_none=True)
    created_at = Timestamp(required=True)
    claimed_at = Timestamp(allow_none=True)
    expired_at = Timestamp(allow_none=True)


class DepositIn(Schema):
    amount = Amount(required=True)
    currency = Currency()
    method = fields.String(required=True, validate=validate.OneOf(["mtn_momo", "orange_money"]))
    phone_number = Phone(required=True)


class DepositOut(Schema):
    id = fields.String(required=True, metadata={"example": "dep_0ABC"})
    object = fields.Constant("deposit")
    livemode = fields.Boolean(required=True)
    amount = fields.Integer(required=True)
    currency = fields.String(required=True)
    method = fields.String(required=True)
    phone_number = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": ["pending", "succeeded", "failed"]})
    failure_code = fields.String(allow_none=True)
    failure_message = fields.String(allow_none=True)
    created_at = Timestamp(required=True)
    settled_at = Timestamp(allow_none=True)
