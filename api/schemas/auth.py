"""Bodies of the `/v1/auth` routes: OTP login, token refresh, PIN and step-up."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.schemas.fields import Phone, Timestamp
from core.identity.pins import PIN_FORMAT

_code = validate.Regexp(r"\A[0-9]{6}\Z", error="code must be the 6 digits sent by WhatsApp")
_pin = validate.Regexp(PIN_FORMAT, error="must be 4 to 6 digits")


class UserOut(Schema):
    id = fields.String(required=True, metadata={"example": "usr_0ABCdef"})
    phone_number = fields.String(required=True, metadata={"example": "+231881158457"})
    country_code = fields.String(required=True, metadata={"example": "LR"})


class RequestOtpIn(Schema):
    phone_number = Phone(required=True)


class OtpRequestedOut(Schema):
    phone_number = fields.String(required=True)
    channel = fields.Constant("whatsapp")
    expires_in = fields.Integer(required=True, metadata={"description": "seconds the code is valid"})


class VerifyOtpIn(Schema):
    phone_number = Phone(required=True)
    code = fields.String(required=True, validate=_code, metadata={"example": "123456"})


class TokensOut(Schema):
    access_token = fields.String(required=True, metadata={"description": "send as Authorization: Bearer …"})
    refresh_token = fields.String(required=True, metadata={
        "description": "works once: POST /v1/auth/refresh returns a new pair"})
    token_type = fields.String(required=True, metadata={"enum": ["Bearer"]})
    expires_in = fields.Integer(required=True, metadata={"description": "seconds the access token lasts"})


class LoginOut(TokensOut):
    user = fields.Nested(UserOut, required=True)


class RefreshIn(Schema):
    refresh_token = fields.String(required=True, validate=validate.Length(min=1, max=200))


class SetPinIn(Schema):
    pin = fields.String(required=True, validate=_pin, metadata={"example": "4821"})
    current_pin = fields.String(validate=_pin, metadata={
        "description": "required to change an existing PIN"})


class PinOut(Schema):
    pin_set = fields.Constant(True)
    updated_at = Timestamp(required=True)


class StepUpIn(Schema):
    pin = fields.String(required=True, validate=_pin)


class StepUpOut(Schema):
    step_up_token = fields.String(required=True, metadata={"description": "send as X-Step-Up-Token"})
    expires_in = fields.Integer(required=True)
