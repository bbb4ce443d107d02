"""Login codes in the chat: whoever asks over the API cannot lock a phone's own chat out,
and saying HI again while a code waits does not send another one."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from core.db import utcnow
from core.identity import otp
from tests.bot.conftest import Phone
from tests.conftest import Api, at_once

B = "+231886123456"
CODE_MESSAGE = re.compile(r"Your Soxara code is \d{6}")


def anonymous_request(client, phone: str = B, ip: str = "41.57.80.1"):
    return client.post("/v1/auth/request-otp", json={"phone_number": phone},
                       headers={"X-Idempotency-Key": uuid.uuid4().hex}, environ_base={"REMOTE_ADDR": ip})


def anonymous_guess(client, code: str, phone: str = B):
    return Api(client).post("/v1/auth/verify-otp", {"phone_number": phone, "code": code})


def codes_in(messages: list[str]) -> int:
    return sum(1 for m in messages if CODE_MESSAGE.search(m))


def other_than(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def test_anonymous_code_requests_for_a_number_do_not_stop_its_own_chat_logging_in(client, phone):
    # Every kind of stranger: one address, many addresses, enough for the daily cap.
    for i in range(30):
        anonymous_request(client, ip=f"41.57.80.{i % 7}")
    b = phone(B)
    out = b.send("HI")
    assert codes_in(out) == 1 and "Too many codes" not in "\n".join(out), out
    assert "logged in" in b.says(b.code())


def test_anonymous_requests_and_wrong_guesses_do_not_burn_the_chats_code(client, phone):
    b = phone(B)
    b.says("HI")
    chat_code = b.code()
    for _ in range(3):
        anonymous_request(client)  # each a new code for the API, none replacing the chat's
    for _ in range(6):
        r = anonymous_guess(client, other_than(chat_code))
        assert r.status_code == 422
    assert "logged in" in b.says(chat_code)


def test_a_code_sent_into_the_chat_logs_in_only_in_the_chat(client, phone):
    b = phone(B)
    b.says("HI")
    code = b.code()
    r = anonymous_guess(client, code)
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "CODE_EXPIRED", r.get_json()
    assert "logged in" in b.says(code), "the try over the API did not count against it"


def test_the_chat_spending_its_codes_leaves_the_api_its_own(client, phone):
    b = phone(B)
    b.says("HI")
    b.says("NEW")
    b.says("NEW")
    assert "Too many codes" in b.says("NEW")
    assert anonymous_request(client).status_code == 202


def test_hi_again_while_a_code_waits_says_when_it_was_sent_and_sends_none(phone, runtime):
    b = phone(B)
    assert codes_in(b.send("HI")) == 1
    first = b.code()
    with runtime.uow() as uow:  # the code went out two minutes ago
        sent = utcnow() - timedelta(minutes=2, seconds=5)
        uow.session.execute(update(otp.OtpCode).where(otp.OtpCode.phone_number == B)
                            .values(created_at=sent, expires_at=sent + otp.VALIDITY))
        uow.commit()
    for _ in range(4):  # three HIs once locked a person out for 13 minutes
        out = b.send("HI")
        assert codes_in(out) == 0, out
        assert "sent you a code 2 minutes ago" in "\n".join(out) and "NEW" in "\n".join(out), out
    assert "logged in" in b.says(first)


def test_new_sends_another_code_and_only_the_newest_works(phone):
    b = phone(B)
    b.says("HI")
    first = b.code()
    out = b.send("NEW")
    assert codes_in(out) == 1, out
    second = b.code()
    if second != first:
        assert "not right" in b.says(first)
    assert "logged in" in b.says(second)


def test_hi_after_the_code_expired_sends_a_new_one(phone, runtime):
    b = phone(B)
    b.says("HI")
    with runtime.uow() as uow:
        uow.session.execute(update(otp.OtpCode).values(expires_at=utcnow() - timedelta(seconds=1)))
        uow.commit()
    assert codes_in(b.send("HI")) == 1
    assert "logged in" in b.says(b.code())


def test_the_chats_own_limit_still_holds_and_the_last_code_still_works(phone, runtime):
    b = phone(B)
    b.says("HI")
    b.says("NEW")
    b.says("NEW")
    last = b.code()
    out = b.send("NEW")
    assert codes_in(out) == 0 and "Too many codes" in "\n".join(out), out
    assert codes_in(b.send("HI")) == 0
    with runtime.uow() as uow:
        statuses = list(uow.session.scalars(select(otp.OtpCode.status).where(otp.OtpCode.phone_number == B)))
    assert sorted(statuses) == ["active", "superseded", "superseded"]
    assert "logged in" in b.says(last)


def _minutes_said(text: str) -> int:
    said = re.search(r"NEW in (\d+) minute", text)
    assert said is not None, text
    return int(said.group(1))


def test_asking_again_while_refused_does_not_push_the_wait_out(phone):
    b = phone(B)
    b.says("HI")
    b.says("NEW")
    b.says("NEW")
    first = b.says("NEW")
    assert "Reply with the last one we sent (it still works)" in first, first
    for _ in range(4):
        later = b.says("NEW")
    assert _minutes_said(later) <= _minutes_said(first), (first, later)


@pytest.mark.postgres
def test_on_postgresql_requests_and_guesses_at_once_leave_the_chat_its_code(pg_runtime):
    from api.app import create_app

    app = create_app(runtime=pg_runtime)
    b = Phone(app.test_client(), pg_runtime, B)
    b.says("HI")
    code = b.code()

    def stranger(i: int) -> int:
        if i % 2:
            return anonymous_request(app.test_client(), ip=f"41.57.80.{i}").status_code
        return anonymous_guess(app.test_client(), other_than(code)).status_code

    assert set(at_once(16, stranger)) <= {202, 422, 429}
    assert "logged in" in b.says(code)
