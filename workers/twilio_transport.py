"""The real WhatsApp transport: Twilio's Messages API, from SOXARA_WHATSAPP_NUMBER.

Lives outside core (core never imports twilio) and is chosen by `workers.messages`
when SOXARA_TWILIO_ACCOUNT_SID is set.
"""

from __future__ import annotations

import logging

from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from core.messaging.transports import TransportError

# A delivery holds its message's row lock while Twilio answers; do not wait for long.
TIMEOUT_SECONDS = 10

# Twilio's client logs each request at INFO; our root logger is at INFO and these lines
# are noise (and would carry query strings), so keep them to warnings.
_quiet = logging.getLogger("soxara.twilio")
_quiet.setLevel(logging.WARNING)


class TwilioTransport:
    keeps_delivered_copy = False

    def __init__(self, account_sid: str, auth_token: str, from_number: str, *, http_client=None):
        self.from_number = from_number
        self.client = Client(account_sid, auth_token, http_client=http_client
                             or TwilioHttpClient(timeout=TIMEOUT_SECONDS, logger=_quiet))

    def send(self, to_phone: str, body: str) -> str:
        try:
            msg = self.client.messages.create(
                from_=f"whatsapp:{self.from_number}", to=f"whatsapp:{to_phone}", body=body
            )
        except TwilioRestException as e:
            # 4xx (a number not on WhatsApp, a bad sender…) will fail again; 429 and 5xx
            # may not. The message text is never part of what we keep of the error.
            permanent = 400 <= (e.status or 500) < 500 and e.status != 429
            raise TransportError(f"twilio {e.status} error {e.code}", permanent=permanent) from None
        except Exception as e:  # noqa: BLE001 - connection errors, timeouts: retry later
            raise TransportError(f"twilio unreachable: {type(e).__name__}") from None
        return msg.sid
