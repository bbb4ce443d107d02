"""Billers and bill payments as the API shows them."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.schemas.fields import Amount, Currency, Timestamp
from core.amounts import CURRENCIES
from core.bills.bill_payments import STATUSES, format_token


class BillerOut(Schema):
    code = fields.String(required=True, metadata={"example": "LEC"})
    name = fields.String(required=True)
    category = fields.String(required=True, metadata={"example": "electricity"})
    prepaid = fields.Boolean(required=True)
    currencies = fields.List(fields.String(metadata={"enum": list(CURRENCIES)}), required=True)
    account_number_pattern = fields.String(required=True, metadata={
        "description": "a regular expression the whole account number matches", "example": "^[0-9]{11}$"})
    account_number_example = fields.String(required=True, metadata={"example": "04123456789"})


class BillPaymentIn(Schema):
    biller = fields.String(required=True, validate=validate.Length(min=1, max=40),
                           metadata={"description": "a biller's `code` from GET /v1/billers", "example": "LEC"})
    account_number = fields.String(required=True, validate=validate.Length(min=1, max=64), metadata={
        "description": "the meter or account number, matching the biller's `account_number_pattern`",
        "example": "04123456789"})
    amount = Amount(required=True)
    currency = Currency()


class PayerOut(Schema):
    type = fields.String(required=True, metadata={"enum": ["user", "merchant"]})
    id = fields.String(required=True)


class BillPaymentOut(Schema):
    id = fields.String(required=True, metadata={"example": "bp_0ABC"})
    object = fields.Constant("bill_payment")
    livemode = fields.Boolean(required=True)
    biller = fields.String(required=True)
    account_number = fields.String(required=True)
    amount = fields.Integer(required=True)
    currency = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": list(STATUSES)})
    token = fields.Function(lambda bp: format_token(bp.token), allow_none=True, metadata={
        "type": "string", "description": "prepaid electricity, once succeeded: the 20-digit STS token in "
        "groups of four, as it is typed into the meter", "example": "1234 5678 9012 3456 7890"})
    units = fields.String(allow_none=True, metadata={"description": "what the token buys", "example": "57.1 kWh"})
    failure_code = fields.String(allow_none=True)
    failure_message = fields.String(allow_none=True)
    payer = fields.Function(lambda bp: {"type": bp.payer_type, "id": bp.payer_id}, metadata={"type": "object"})
    created_at = Timestamp(required=True)
    settled_at = Timestamp(allow_none=True)
