"""Sandbox only: a chat page that plays a phone against the real webhook, and the outbox.

- `GET /dev/whatsapp`: the page (plain HTML and JavaScript, no build step), opened on the
  first demo phone of `soxara demo`.
- `GET /dev/whatsapp/phone?number=0886100077`: the number a person typed, read as the bot
  reads it (core.phones' local rule), so the page's phone box takes every form the chat does.
- `POST /dev/whatsapp/sign`: the form Twilio would send for a message from a phone, with
  the `X-Twilio-Signature` Twilio would compute (with SOXARA_TWILIO_AUTH_TOKEN, over
  SOXARA_PUBLIC_URL). The page then posts that form to `/whatsapp/webhook` itself, so
  every message goes through the real webhook, signature check included.
- `GET /dev/messages?to=+231…`: what was sent to a phone, oldest first.

The blueprint is registered only when `settings.sandbox` is on; in production these
routes do not exist (404).
"""

from __future__ import annotations

import secrets
from importlib import resources

from flask import Blueprint, Response, current_app, request

from bot import replies
from bot.demo import DEMO_USERS
from bot.webhook import WEBHOOK_PATH, public_url_for
from core import jsonbounds
from core.db import utcnow
from core.errors import InvalidInput
from core.events.events import iso
from core.messaging import outbox
from core.phones import local_form, normalise_e164, normalise_local

dev = Blueprint("dev", __name__)

MAX_BODY = 4096


def twilio_form(settings, phone: str, body: str, *, profile_name: str | None = None,
                message_sid: str | None = None, num_media: int = 0) -> dict[str, str]:
    """The fields Twilio posts for an inbound WhatsApp message."""
    form = {
        "SmsMessageSid": "", "NumMedia": str(num_media), "ProfileName": profile_name or "",
        "MessageType": "text", "SmsSid": "", "WaId": phone.lstrip("+"), "SmsStatus": "received",
        "Body": body, "To": f"whatsapp:{settings.whatsapp_number}", "NumSegments": "1",
        "ReferralNumMedia": "0", "MessageSid": message_sid or "SM" + secrets.token_hex(16),
        "AccountSid": settings.twilio_account_sid or "AC" + "0" * 32,
        "From": f"whatsapp:{phone}", "ApiVersion": "2010-04-01",
    }
    form["SmsMessageSid"] = form["SmsSid"] = form["MessageSid"]
    return form


def sign(settings, form: dict[str, str], path: str = WEBHOOK_PATH) -> str:
    from twilio.request_validator import RequestValidator

    return RequestValidator(settings.twilio_auth_token).compute_signature(
        public_url_for(settings, path), form)


def _phone(text: str | None) -> str:
    """`+231…`; a `+` sent unencoded in a query string arrives as a space."""
    t = (text or "").strip()
    if t and t[0].isdigit():
        try:
            return normalise_e164("+" + t)
        except InvalidInput:
            pass
    return normalise_e164(t) if t.startswith("+") else normalise_local(t)


def _invalid(e: InvalidInput) -> Response:
    return replies.refused(422, e.code, e.message, e.details)


@dev.get("/dev/whatsapp")
def chat_page():
    demo_phone = DEMO_USERS[0][0]
    html = resources.files("bot").joinpath("dev_whatsapp.html").read_text(encoding="utf-8")
    html = html.replace("{{DEMO_PHONE}}", demo_phone).replace("{{DEMO_PHONE_LOCAL}}", local_form(demo_phone))
    return Response(html, mimetype="text/html")


@dev.get("/dev/whatsapp/phone")
def read_phone():
    try:
        return replies.ok({"phone": _phone(request.args.get("number"))})
    except InvalidInput as e:
        return _invalid(e)


@dev.post("/dev/whatsapp/sign")
def sign_message():
    raw = request.get_data(cache=True)
    try:
        data = jsonbounds.parse(raw) if raw.strip() else {}
    except jsonbounds.BadJson as e:
        return replies.refused(400, "BAD_REQUEST", str(e))
    if not isinstance(data, dict):
        return replies.refused(400, "BAD_REQUEST", "the body must be a JSON object")
    try:
        phone = _phone(data.get("phone"))
    except InvalidInput as e:
        return _invalid(e)
    body = data.get("body")
    if not isinstance(body, str) or len(body) > MAX_BODY:
        return _invalid(InvalidInput(f"body must be text of at most {MAX_BODY} characters", field="body"))
    settings = current_app.extensions["soxara"].settings
    form = twilio_form(settings, phone, body, profile_name=data.get("profile_name") or None)
    return replies.ok({
        "url": WEBHOOK_PATH, "form": form, "signature": sign(settings, form),
        "sent_at": iso(utcnow()),
    })


DEV_MESSAGES_MAX = 10_000


@dev.get("/dev/messages")
def messages():
    try:
        phone = _phone(request.args.get("to"))
    except InvalidInput as e:
        return _invalid(e)
    rt = current_app.extensions["soxara"]
    with rt.uow() as uow:
        # The sandbox's "phone" shows what the person received, codes included: all of it
        # (a client may count the items), up to a bound no sandbox chat comes near.
        items = outbox.outbox_for(uow, phone, limit=DEV_MESSAGES_MAX, secret_key=rt.secret_key)
    return replies.ok({"items": [
        {"id": m.id, "to": m.to, "body": m.body,
         "created_at": iso(m.created_at)}
        for m in items
    ]})
