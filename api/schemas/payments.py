"""Payments and refunds as the API takes and shows them (core/payments: the snapshots)."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from api.pagination import ListQuery
from api.schemas.fields import Amount, Currency, Phone
from core.payments import payments

_ID = validate.Regexp(r"^[a-z]+_[A-Za-z0-9]+$", error="not an object id")
_TIME = {"description": "ISO-8601 UTC, or null", "format": "date-time"}


def _metadata_bounds(value: dict) -> None:
    if len(value) > 20:
        raise ValidationError("at most 20 keys")


class _PaymentBase(Schema):
    amount = Amount(required=True)
    currency = Currency()
    description = fields.String(validate=validate.Length(max=500))
    customer_phone = Phone()
    metadata = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=40)),
                           values=fields.String(validate=validate.Length(max=500)), validate=_metadata_bounds,
                           metadata={"description": "up to 20 string keys and values, yours to use"})
    send_link = fields.Boolean(truthy={True}, falsy={False}, metadata={
        "description": "true: send the customer_phone a WhatsApp message with the hosted pay page's link "
                       "(pay_url); needs customer_phone. The link can be sent only now: the client_secret "
                       "in it is not kept"})

    @validates_schema
    def _link_has_a_phone(self, data, **_kw):
        if data.get("send_link") and not data.get("customer_phone"):
            raise ValidationError("send_link needs customer_phone: the number the link is sent to", "send_link")


class CardIn(Schema):
    number = fields.String(required=True, validate=[validate.Length(min=12, max=23),
                                                    validate.Regexp(r"^[0-9 ]+$", error="digits only")])
    exp_month = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=12))
    exp_year = fields.Integer(required=True, strict=True, validate=validate.Range(min=2000, max=2100))
    cvc = fields.String(required=True, validate=validate.Regexp(r"^[0-9]{3,4}$", error="3 or 4 digits"))


class PaymentMethodIn(Schema):
    type = fields.String(required=True, validate=validate.OneOf(payments.METHODS))
    phone_number = Phone()
    card = fields.Nested(CardIn)

    @validates_schema
    def _fits_type(self, data, **_kw):
        if data.get("type") == "card" and "card" not in data:
            raise ValidationError("a card payment needs card: {number, exp_month, exp_year, cvc}", "card")
        if data.get("type") != "card" and "card" in data:
            raise ValidationError("card goes only with type card", "card")
        if data.get("type") == "card" and "phone_number" in data:
            raise ValidationError("phone_number does not go with type card", "phone_number")


class PaymentIn(_PaymentBase):
    payment_method = fields.Nested(PaymentMethodIn, metadata={"description": "with confirm: true"})
    confirm = fields.Boolean(metadata={"description": "confirm at once with payment_method"})

    @validates_schema
    def _confirm_needs_a_method(self, data, **_kw):
        if data.get("confirm") and "payment_method" not in data:
            raise ValidationError("confirm: true needs a payment_method", "payment_method")
        if "payment_method" in data and not data.get("confirm"):
            raise ValidationError("a payment_method goes with confirm: true", "confirm")


class ConfirmIn(Schema):
    client_secret = fields.String(validate=validate.Length(min=1, max=100))
    payment_method = fields.Nested(PaymentMethodIn, required=True)


class PaymentsQuery(ListQuery):
    status = fields.String(validate=validate.OneOf(payments.STATUSES))
    customer = Phone(metadata={"description": "the customer_phone the payment was made for"})
    created_gte = fields.AwareDateTime(metadata={"description": "created at or after (ISO-8601 with a zone)"})
    created_lte = fields.AwareDateTime(metadata={"description": "created at or before (ISO-8601 with a zone)"})


class CardOut(Schema):
    brand = fields.String(required=True)
    last4 = fields.String(required=True)


class PaymentMethodOut(Schema):
    type = fields.String(required=True, metadata={"enum": list(payments.METHODS)})
    phone_number = fields.String(allow_none=True)
    card = fields.Nested(CardOut, allow_none=True)


class NextActionOut(Schema):
    type = fields.String(required=True, metadata={
        "description": "whatsapp_approval (the customer answers in WhatsApp with the PIN), "
                       "mobile_money_approval (on their phone), 3ds_authentication (card)"})
    expires_at = fields.String(allow_none=True, metadata=_TIME)
    url = fields.String(allow_none=True, metadata={
        "description": "3ds_authentication only: the hosted pay page where the customer does the step, "
                       "opened with the payment's client_secret as the create's pay_url is (test mode: "
                       "Complete or Fail authentication); null otherwise"})


class PaymentErrorOut(Schema):
    code = fields.String(required=True)
    message = fields.String(allow_none=True)


class PaymentOut(Schema):
    id = fields.String(required=True, metadata={"example": "pi_0ABC"})
    object = fields.Constant("payment")
    livemode = fields.Boolean(required=True)
    amount = fields.Integer(required=True)
    currency = fields.String(required=True)
    fee = fields.Integer(allow_none=True, metadata={"description": "known once a method is chosen"})
    net = fields.Integer(allow_none=True, metadata={"description": "amount - fee: what the merchant receives"})
    amount_refunded = fields.Integer(required=True)
    status = fields.String(required=True, metadata={"enum": list(payments.STATUSES)})
    description = fields.String(allow_none=True)
    metadata = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    customer_phone = fields.String(allow_none=True)
    payment_method = fields.Nested(PaymentMethodOut, allow_none=True)
    next_action = fields.Nested(NextActionOut, allow_none=True)
    last_payment_error = fields.Nested(PaymentErrorOut, allow_none=True)
    created_at = fields.String(required=True, metadata=_TIME)
    succeeded_at = fields.String(allow_none=True, metadata=_TIME)
    canceled_at = fields.String(allow_none=True, metadata=_TIME)
    failed_at = fields.String(allow_none=True, metadata=_TIME)


class PaymentCreatedOut(PaymentOut):
    client_secret = fields.String(required=True, metadata={
        "description": "shown only in this response: give it to the customer's page or app to confirm"})
    pay_url = fields.String(required=True, metadata={
        "description": "the hosted pay page for this payment (it holds the client_secret: shown only here); "
                       "send it to the customer, or ask us to with send_link"})


class RefundIn(Schema):
    payment = fields.String(required=True, validate=[validate.Length(max=40), _ID])
    amount = Amount()
    reason = fields.String(validate=validate.Length(max=200))


class RefundOut(Schema):
    id = fields.String(required=True, metadata={"example": "re_0ABC"})
    object = fields.Constant("refund")
    livemode = fields.Boolean(required=True)
    payment = fields.String(required=True)
    amount = fields.Integer(required=True)
    currency = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": ["pending", "succeeded", "failed"]})
    reason = fields.String(allow_none=True)
    failure_code = fields.String(allow_none=True)
    failure_message = fields.String(allow_none=True)
    created_at = fields.String(required=True, metadata=_TIME)
    settled_at = fields.String(allow_none=True, metadata=_TIME)
