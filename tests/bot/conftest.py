"""Fixtures for driving the bot: phones that chat with the real webhook, signed like Twilio."""

from __future__ import annotations

import re
import secrets

import pytest
from twilio.request_validator import RequestValidator

from core.messaging.outbox import outbox_for

WEBHOOK = "/whatsapp/webhook"
PIN = "4821"


def sign(settings, form: dict, path: str = WEBHOOK) -> str:
    """X-Twilio-Signature exactly as Twilio computes it, over the public URL."""
    return RequestValidator(settings.twilio_auth_token).compute_signature(
        settings.public_url + path, form)


class Phone:
    """A WhatsApp user: sends signed messages to the webhook, reads what the bot sent."""

    def __init__(self, client, runtime, number: str, name: str | None = None):
        self.client, self.runtime, self.number, self.name = client, runtime, number, name

    def form(self, body: str, sid: str | None = None, **extra) -> dict:
        form = {"MessageSid": sid or "SM" + secrets.token_hex(16), "AccountSid": "AC" + "1" * 32,
                "From": f"whatsapp:{self.number}", "To": "whatsapp:+231770000000",
                "Body": body, "NumMedia": "0", "WaId": self.number.lstrip("+")}
        if self.name:
            form["ProfileName"] = self.name
        form.update({k: str(v) for k, v in extra.items()})
        return form

    def post(self, form: dict, signature: str | None = "auto"):
        headers = {}
        if signature == "auto":
            signature = sign(self.runtime.settings, form)
        if signature is not None:
            headers["X-Twilio-Signature"] = signature
        return self.client.post(WEBHOOK, data=form, headers=headers)

    def outbox(self) -> list[str]:
        with self.runtime.uow() as uow:
            return [m.body for m in outbox_for(uow, self.number, 500,
                                                         secret_key=self.runtime.secret_key)]

    def send(self, body: str, **extra) -> list[str]:
        """Send a message; the replies it caused (jobs are eager: already stored)."""
        before = len(self.outbox())
        r = self.post(self.form(body, **extra))
        assert r.status_code == 200, r.data
        assert r.mimetype in ("application/xml", "text/xml")
        return self.outbox()[before:]

    def says(self, body: str, **extra) -> str:
        """Send; every reply it caused, joined (for `in` checks)."""
        return "\n---\n".join(self.send(body, **extra))

    def code(self) -> str:
        for body in reversed(self.outbox()):
            m = re.search(r"\b(\d{6})\b", body)
            if m:
                return m.group(1)
        raise AssertionError("no code in the chat")

    def send_money(self, command: str, pin: str = PIN) -> str:
        """`SEND …`, YES at the confirmation and the PIN: the replies to the PIN."""
        self.says(command)
        self.says("1")
        return self.says(pin)

    def login(self, pin: str = PIN) -> None:
        """HI, the code from the chat, and (first time) a PIN."""
        out = self.says("HI")
        assert "code" in out, out
        out = self.says(self.code())
        assert "logged in" in out, out
        if "Choose a 4–6 digit PIN" in out:
            assert "same PIN again" in self.says(pin)
            out = self.says(pin)
            assert "PIN is set" in out, out


@pytest.fixture
def phone(client, runtime):
    def make(number: str, name: str | None = None) -> Phone:
        return Phone(client, runtime, number, name)
    return make


@pytest.fixture
def person(phone, runtime):
    """A logged-in phone (with the test PIN), given `usd` and `lrd` test money first."""
    def make(number: str, name: str | None = None, *, usd: int = 0, lrd: int = 0) -> Phone:
        p = phone(number, name)
        p.login()
        for amount, currency in ((usd, "USD"), (lrd, "LRD")):
            if amount:
                fund(runtime, number, amount, currency)
        return p
    return make


def fund(runtime, phone_e164: str, amount: int, currency: str = "USD") -> str:
    """Give the user (created if new) test money; the wallet id."""
    from core.identity import users
    from core.wallets import adjustments, wallets

    with runtime.uow() as uow:
        u = users.get_or_create(uow, phone_e164)
        w = wallets.wallet_for(uow, wallets.USER, u.id, currency, runtime.settings.user_mode_live)
        uow.session.flush()
        adjustments.adjust(uow, wallet_id=w.id, amount=amount, reason="test funds")
        uow.commit()
        return w.id


def balance(runtime, phone_e164: str, currency: str = "USD") -> int:
    from core.identity import users
    from core.wallets import wallets

    with runtime.uow() as uow:
        u = users.find_by_phone(uow, phone_e164)
        w = wallets.find_wallet(uow, wallets.USER, u.id, currency,
                                runtime.settings.user_mode_live) if u else None
        return w.balance if w else 0
