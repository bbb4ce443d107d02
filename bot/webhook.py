"""`POST /whatsapp/webhook`: Twilio's inbound WhatsApp messages.

The signature is checked first, against `SOXARA_PUBLIC_URL` rather than the URL this
process saw (a TLS-terminating proxy sits in between); a bad or missing one is a 403
and nothing else happens. Then one transaction stores the message and advances the
dialog; replies are queued in it and sent by a worker after commit, so the answer to
Twilio never waits on the network. A MessageSid seen before is acknowledged and left
alone, even when two copies arrive at once (the conversation row lock and the unique
MessageSid decide).
"""

from __future__ import annotations

import logging
import re

from flask import Blueprint, Response, current_app, request
from twilio.request_validator import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)
from twilio.twiml.messaging_response import MessagingResponse

from bot import dialog, replies
from core import names
from core.db import RETRY_AFTER, database_unavailable
from core.errors import InvalidInput
from core.phones import normalise_e164

log = logging.getLogger("soxara.bot")

WEBHOOK_PATH = "/whatsapp/webhook"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# A deadlock victim or a busy SQLite file is worth another go before giving up.
ATTEMPTS = 3

whatsapp = Blueprint("whatsapp", __name__)


def public_url_for(settings, path: str, query: str = "") -> str:
    """The URL Twilio called, as Twilio saw it: signatures are computed over it."""
    url = settings.public_url.rstrip("/") + path
    return f"{url}?{query}" if query else url


def signature_ok(settings, url: str, form, signature: str | None, settings_header: str | None) -> bool:
    if not signature:
        return False
    validator = RequestValidator(settings.twilio_auth_token)
    return validator.validate(url, form, signature, algorithm=get_signature_algorithm(settings_header))


def empty_twiml() -> Response:
    # Replies go out through the worker; Twilio needs only an acknowledgement.
    return Response(str(MessagingResponse()), status=200, mimetype="application/xml")


def _refuse(status: int, code: str, message: str) -> Response:
    return replies.refused(status, code, message)


def _text(value: str | None) -> str:
    """Form text fit to store: no NUL (PostgreSQL refuses it) nor other control characters."""
    return _CONTROL.sub("", value or "")


def inbound_from(settings, form) -> dialog.Inbound | None:
    """The message, or None when it is not one we can answer (no sender, not WhatsApp)."""
    sid = form.get("MessageSid") or form.get("SmsMessageSid") or ""
    sender = (form.get("From") or "").strip()
    if not sid or not sender.lower().startswith("whatsapp:"):
        return None
    # A delivery-status callback pointed at this URL is not a message from a person.
    if form.get("MessageStatus") or (form.get("SmsStatus") or "received") != "received":
        return None
    try:
        phone = normalise_e164(sender.split(":", 1)[1])
    except InvalidInput:
        return None
    if phone == settings.whatsapp_number:
        return None  # our own number: never talk to ourselves
    try:
        num_media = max(0, int(form.get("NumMedia") or 0))
    except ValueError:
        num_media = 0
    # A tapped quick-reply button carries its payload; otherwise what was typed.
    text = _text(form.get("ButtonPayload") or form.get("Body"))
    return dialog.Inbound(phone=phone, text=text, message_sid=_text(sid),
                          profile_name=names.fit_to_show(form.get("ProfileName")), num_media=num_media)


def handle(rt, msg: dialog.Inbound) -> None:
    """Store and answer one message; a redelivery does nothing. Raises what says the
    database is unavailable (`core.db.database_unavailable`): nothing was kept, not even
    the MessageSid, so Twilio's retry is handled as the message it is."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with rt.uow() as uow:
                verdict = dialog.judge_login_code(uow, rt, msg)
                if dialog.receive(uow, rt, msg, code_verdict=verdict):
                    uow.commit()
            return
        except Exception as e:
            why = database_unavailable(e)
            if why == "conflict" and attempt < ATTEMPTS:
                log.warning("retrying WhatsApp message %s after a database conflict", msg.message_sid)
                continue
            if why is not None:
                raise
            # A bug: what it began rolled back. Keep the message, start the phone over and
            # tell the person, rather than leave them talking to silence.
            log.exception("WhatsApp message %s failed; starting that conversation over", msg.message_sid)
            with rt.uow() as uow:
                if dialog.recover(uow, rt, msg):
                    uow.commit()
            return


@whatsapp.post(WEBHOOK_PATH)
def webhook():
    rt = current_app.extensions["soxara"]
    url = public_url_for(rt.settings, request.path, request.query_string.decode("latin-1"))
    if not signature_ok(rt.settings, url, request.form, request.headers.get(SIGNATURE_HEADER),
                        request.headers.get(SIGNATURE_SETTINGS_HEADER)):
        log.warning("refused a WhatsApp webhook call with a bad or missing signature")
        return _refuse(403, "FORBIDDEN", "invalid or missing X-Twilio-Signature")
    msg = inbound_from(rt.settings, request.form)
    if msg is None:
        log.warning("ignored a signed webhook call that is not a WhatsApp message")
        return empty_twiml()
    try:
        handle(rt, msg)
    except Exception as e:
        why = database_unavailable(e)
        if why is None:
            raise
        # Nothing was kept, not even the MessageSid: a retry of this message (Twilio's,
        # where its webhook connection settings retry on 5xx) is processed, not ignored.
        log.warning("answered Twilio 503 for WhatsApp message %s: the database %s", msg.message_sid,
                    "conflict" if why == "conflict" else "down")
        resp = _refuse(503, "SERVICE_UNAVAILABLE", "the database is unavailable; retry later")
        resp.headers["Retry-After"] = str(RETRY_AFTER[why])
        return resp
    return empty_twiml()
