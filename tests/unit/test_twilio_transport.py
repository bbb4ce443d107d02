"""The Twilio transport, against a fake HTTP client: what it asks Twilio, how it fails."""

from __future__ import annotations

import json
import logging

import pytest
from twilio.http import HttpClient
from twilio.http.response import Response

from core.messaging.transports import TransportError
from workers.twilio_transport import TwilioTransport


class FakeHttp(HttpClient):
    def __init__(self, status=201, body=None, raises=None):
        super().__init__(logging.getLogger("test.twilio"), False)
        self.status, self.body, self.raises, self.requests = status, body, raises, []

    def request(self, method, url, params=None, data=None, headers=None, auth=None, timeout=None,
                allow_redirects=False):
        self.requests.append({"method": method, "url": url, "data": data, "auth": auth})
        if self.raises:
            raise self.raises
        body = self.body or {"sid": "SM0123456789abcdef0123456789abcdef", "status": "queued"}
        return Response(self.status, json.dumps(body))


def transport(http):
    return TwilioTransport("AC" + "0" * 32, "auth-token", "+231770000000", http_client=http)


def test_sends_from_the_bot_number_with_whatsapp_prefixes():
    http = FakeHttp()
    sid = transport(http).send("+231881234567", "Your Soxara code is 123456.")
    assert sid == "SM0123456789abcdef0123456789abcdef"
    (req,) = http.requests
    assert req["method"] == "POST" and req["url"].endswith("/Accounts/AC" + "0" * 32 + "/Messages.json")
    assert req["data"]["From"] == "whatsapp:+231770000000"
    assert req["data"]["To"] == "whatsapp:+231881234567"
    assert req["data"]["Body"] == "Your Soxara code is 123456."


@pytest.mark.parametrize("status,permanent", [(400, True), (404, True), (429, False), (500, False), (503, False)])
def test_provider_errors_say_whether_to_retry(status, permanent):
    http = FakeHttp(status=status, body={"code": 21211, "message": "Invalid 'To' Phone Number", "status": status})
    with pytest.raises(TransportError) as e:
        transport(http).send("+231881234567", "secret 123456")
    assert e.value.permanent is permanent
    assert "123456" not in str(e.value), "the text is never part of the recorded error"


def test_network_failure_is_retryable():
    http = FakeHttp(raises=ConnectionError("boom"))
    with pytest.raises(TransportError) as e:
        transport(http).send("+231881234567", "hi")
    assert e.value.permanent is False
