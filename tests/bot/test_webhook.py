"""The webhook's contract with Twilio: signatures, acknowledgements, redeliveries."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from core.messaging.conversations import Conversation, InboundMessage
from core.messaging.outbox import OutboundMessage
from tests.bot.conftest import WEBHOOK, Phone, sign

A = "+231881234567"


def _counts(runtime) -> tuple[int, int, int]:
    with runtime.uow() as uow:
        s = uow.session
        return (s.scalar(select(func.count()).select_from(Conversation)),
                s.scalar(select(func.count()).select_from(InboundMessage)),
                s.scalar(select(func.count()).select_from(OutboundMessage)))


def test_a_signed_message_is_acknowledged_with_empty_twiml(phone):
    p = phone(A)
    r = p.post(p.form("HI"))
    assert r.status_code == 200
    assert r.mimetype == "application/xml"
    assert r.data.decode().endswith("<Response />")
    assert r.headers.get("X-Trace-Id")


@pytest.mark.parametrize("signature", [None, "", "bm90IGEgc2lnbmF0dXJl", "tampered"])
def test_missing_or_bad_signature_is_403_and_nothing_happens(phone, runtime, signature):
    p = phone(A)
    form = p.form("HI")
    if signature == "tampered":
        signature = sign(runtime.settings, {**form, "Body": "SEND 500 USD 0886123456"})
    r = p.post(form, signature=signature)
    assert r.status_code == 403
    assert r.get_json()["error"]["code"] == "FORBIDDEN"
    assert _counts(runtime) == (0, 0, 0)


def test_signature_is_checked_against_the_public_url_not_the_request_url(client, runtime):
    # Behind a TLS proxy the app sees http://localhost/…; Twilio signed https://public/….
    p = Phone(client, runtime, A)
    form = p.form("HI")
    seen_by_app = "http://localhost" + WEBHOOK
    from twilio.request_validator import RequestValidator

    wrong = RequestValidator(runtime.settings.twilio_auth_token).compute_signature(seen_by_app, form)
    assert p.post(form, signature=wrong).status_code == 403
    assert p.post(form).status_code == 200  # signed over SOXARA_PUBLIC_URL


def test_a_signature_made_with_another_token_is_refused(phone, runtime):
    from twilio.request_validator import RequestValidator

    p = phone(A)
    form = p.form("HI")
    forged = RequestValidator("someone-elses-token").compute_signature(
        runtime.settings.public_url + WEBHOOK, form)
    assert p.post(form, signature=forged).status_code == 403


def test_a_redelivered_message_is_acknowledged_and_not_processed_again(phone, runtime):
    p = phone(A)
    form = p.form("HI", sid="SM" + "a" * 32)
    assert p.post(form).status_code == 200
    after_first = _counts(runtime)
    r = p.post(form)
    assert r.status_code == 200 and r.data.decode().endswith("<Response />")
    assert _counts(runtime) == after_first


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_two_copies_at_once_are_processed_once(request, backend):
    """Twilio retries while the first copy is still being handled: both get 200, one counts."""
    from api.app import create_app

    rt = request.getfixturevalue("pg_runtime" if backend == "postgres" else "runtime")
    app = create_app(runtime=rt)
    phones = [Phone(app.test_client(), rt, A) for _ in range(2)]
    assert phones[0].post(phones[0].form("HI")).status_code == 200
    form = phones[0].form(phones[0].code(), sid="SM" + "b" * 32)
    before = _counts(rt)
    barrier = threading.Barrier(2)
    statuses = []

    def deliver(p):
        barrier.wait()
        statuses.append(p.post(form).status_code)

    threads = [threading.Thread(target=deliver, args=(p,)) for p in phones]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200, 200]
    after = _counts(rt)
    assert after[1] == before[1] + 1  # one inbound row
    outbox = phones[0].outbox()
    assert sum("logged in" in b for b in outbox) == 1


def test_messages_that_are_not_whatsapp_are_ignored(phone, runtime):
    p = phone(A)
    form = p.form("HI")
    form["From"] = "+231881234567"  # SMS, not WhatsApp
    assert p.post(form).status_code == 200
    assert _counts(runtime) == (0, 0, 0)


def test_the_webhook_only_takes_post(client):
    assert client.get(WEBHOOK).status_code == 405


def test_quick_reply_button_payload_is_read_as_the_answer(phone):
    p = phone(A)
    p.send("HI")
    # A tapped button sends its title as Body and its id as ButtonPayload.
    out = p.says("Get a new code", ButtonPayload="NEW")
    assert "new code" in out


def test_a_bug_is_answered_with_an_apology_and_nothing_moves(phone, runtime, monkeypatch):
    from bot import dialog

    p = phone(A)

    def boom(turn, msg):
        raise RuntimeError("bug")

    monkeypatch.setattr(dialog, "respond", boom)
    out = p.says("HI")
    assert "went wrong on our side" in out
    # The message was kept: a redelivery does not hit the bug again.
    before = _counts(runtime)
    form = p.form("HI", sid="SM" + "c" * 32)
    p.post(form)
    p.post(form)
    assert _counts(runtime)[1] == before[1] + 1


def test_status_callbacks_and_our_own_number_are_not_conversations(phone, runtime):
    p = phone(A)
    status = p.form("", MessageStatus="delivered", SmsStatus="delivered")
    assert p.post(status).status_code == 200
    ours = phone(runtime.settings.whatsapp_number)
    assert ours.post(ours.form("HI")).status_code == 200
    assert _counts(runtime) == (0, 0, 0)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_two_pin_messages_at_once_move_money_once(request, backend):
    """Two different messages (two MessageSids) with the PIN, arriving together: the
    conversation row lock makes them take turns, and only the first finds the send."""
    from api.app import create_app
    from tests.bot.conftest import PIN, balance, fund

    rt = request.getfixturevalue("pg_runtime" if backend == "postgres" else "runtime")
    app = create_app(runtime=rt)
    phones = [Phone(app.test_client(), rt, A) for _ in range(2)]
    phones[0].login()
    fund(rt, A, 100_00)
    phones[0].says("SEND 10 USD 0886123456")
    phones[0].says("YES")
    barrier = threading.Barrier(2)
    statuses = []

    def deliver(p):
        form = p.form(PIN)
        barrier.wait()
        statuses.append(p.post(form).status_code)

    threads = [threading.Thread(target=deliver, args=(p,)) for p in phones]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200, 200]
    assert balance(rt, A) == 90_00
    assert sum("Ref tr_" in b for b in phones[0].outbox()) == 1


def _down_then_back(rt, monkeypatch, down: str):
    """A webhook client on `rt`, and a context in which its database fails as `down` says."""
    from contextlib import contextmanager

    from api.app import create_app
    from bot import dialog
    from tests.conftest import database_down, raise_sqlstate

    @contextmanager
    def failing():
        if down == "unreachable":
            with database_down(rt):
                yield
            return
        receive = dialog.receive

        def victim(uow, *args, **kw):
            receive(uow, *args, **kw)
            raise_sqlstate(uow, "deadlock_detected")

        monkeypatch.setattr(dialog, "receive", victim)
        try:
            yield
        finally:
            monkeypatch.setattr(dialog, "receive", receive)

    return Phone(create_app(runtime=rt).test_client(), rt, A), failing


@pytest.mark.parametrize("down", ["unreachable", "deadlock"])
def test_the_database_failing_is_503_and_twilios_retry_is_processed(pg_runtime, monkeypatch, down):
    """Twilio retries a 503; the message was not kept (its MessageSid with it), so the
    retry is handled as the first delivery, not acknowledged as a copy."""
    p, failing = _down_then_back(pg_runtime, monkeypatch, down)
    form = p.form("HI")
    with failing():
        r = p.post(form)
    assert r.status_code == 503 and int(r.headers["Retry-After"]) >= 1
    assert _counts(pg_runtime) == (0, 0, 0), "nothing kept, nothing queued"
    r = p.post(form)
    assert r.status_code == 200
    assert any("code" in body for body in p.outbox()), "the retry was answered"
    assert _counts(pg_runtime)[1] == 1
