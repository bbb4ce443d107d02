"""`/v1/auth`: OTP login, refresh rotation, PIN and step-up, through the HTTP API."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, text, update

from core import ratelimit
from core.db import utcnow
from core.identity import otp, pins, sessions
from tests.conftest import TEST_PHONE, Api, at_once, login, otp_sent_to, set_user_pin, step_up_token

OTHER_PHONE = "+231771234567"


def err(resp) -> str:
    body = resp.get_json()
    assert body["success"] is False, body
    return body["error"]["code"]


def request_otp(client, phone=TEST_PHONE, idem=None, ip=None):
    return client.post("/v1/auth/request-otp", json={"phone_number": phone},
                       headers={"X-Idempotency-Key": idem or uuid.uuid4().hex},
                       environ_base={"REMOTE_ADDR": ip} if ip else {})


def verify(client, code, phone=TEST_PHONE, idem=None):
    return Api(client).post("/v1/auth/verify-otp", {"phone_number": phone, "code": code}, idem=idem)


def refresh(client, token, idem=None):
    return Api(client).post("/v1/auth/refresh", {"refresh_token": token}, idem=idem)


def step_up(client, token, pin, idem=None):
    return Api(client, token).post("/v1/auth/step-up", {"pin": pin}, idem=idem)


def set_pin(client, token, body, idem=None):
    return Api(client, token).post("/v1/auth/pin", body, idem=idem)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


# --- request-otp ------------------------------------------------------------------------------


def test_request_otp_sends_a_masked_code_by_whatsapp(client, runtime):
    r = request_otp(client)
    assert r.status_code == 202
    assert r.get_json()["data"] == {"phone_number": TEST_PHONE, "channel": "whatsapp", "expires_in": 300}
    from core.messaging import outbox

    with runtime.uow() as uow:
        (msg,) = outbox.outbox_for(uow, TEST_PHONE)
    code = otp_sent_to(runtime, TEST_PHONE)
    assert code not in msg.body and outbox.MASK in msg.body and msg.status == "sent"


@pytest.mark.parametrize("phone", [
    "0881234567", "+231", "+99912345678", "hello", "", "+2318812345678901234",
    # E.164 only: phonenumbers would read each of these as +231881234567 (or drop the
    # extension), so the number stored would not be the number sent.
    "+231 88 123 4567", "+231-88-123-4567", "+231 (88) 1234567", " +231881234567", "+231881234567\n",
    "+231881234567 ext. 99", "+231881234567;ext=5", "+２３１８８１２３４５６７",
])
def test_malformed_phone_is_422_invalid_phone_number(client, runtime, phone):
    from core.messaging import outbox

    r = request_otp(client, phone)
    assert r.status_code == 422 and err(r) == "INVALID_PHONE_NUMBER"
    assert r.get_json()["error"]["details"] == {"field": "phone_number"}
    with runtime.uow() as uow:
        assert outbox.outbox_for(uow, TEST_PHONE) == [], "no code was sent"


@pytest.mark.parametrize("pin", ["4821\n", "4821 ", "٤٨٢١", "48 21"])
def test_a_pin_is_digits_only_not_a_final_newline(client, user_api, pin):
    r = set_pin(client, user_api.token, {"pin": pin})
    assert r.status_code == 422 and err(r) == "VALIDATION_ERROR"
    assert step_up(client, user_api.token, "4821").get_json()["error"]["code"] == "PIN_NOT_SET"


def test_a_code_with_a_final_newline_is_malformed_and_counts_no_try(client, runtime):
    request_otp(client)
    code = otp_sent_to(runtime, TEST_PHONE)
    r = verify(client, code + "\n")
    assert r.status_code == 422 and err(r) == "VALIDATION_ERROR"
    r = verify(client, wrong(code))
    assert r.get_json()["error"]["details"] == {"attempts_remaining": 4}, "the malformed one counted no try"
    assert verify(client, code).status_code == 200


@pytest.mark.parametrize("body,code", [
    ({}, "VALIDATION_ERROR"),
    ({"phone_number": 231881234567}, "INVALID_PHONE_NUMBER"),
    ({"phone_number": None}, "VALIDATION_ERROR"),
    ({"phone_number": TEST_PHONE, "extra": 1}, "VALIDATION_ERROR"),
])
def test_request_otp_bad_bodies(client, body, code):
    r = Api(client).post("/v1/auth/request-otp", body)
    assert r.status_code == 422 and err(r) == code


def test_request_otp_needs_an_idempotency_key_and_json(client):
    r = Api(client).post("/v1/auth/request-otp", {"phone_number": TEST_PHONE}, idem=False)
    assert r.status_code == 400 and err(r) == "IDEMPOTENCY_KEY_REQUIRED"
    r = client.post("/v1/auth/request-otp", data="phone_number=x",
                    headers={"X-Idempotency-Key": "k", "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415


def test_request_otp_replay_sends_nothing_more(client, runtime):
    from core.messaging import outbox

    a = request_otp(client, idem="same")
    b = request_otp(client, idem="same")
    assert a.status_code == b.status_code == 202 and b.headers["Idempotent-Replayed"] == "true"
    with runtime.uow() as uow:
        assert len(outbox.outbox_for(uow, TEST_PHONE)) == 1


def test_a_new_code_replaces_the_old_one(client, runtime, monkeypatch):
    # Two known codes: a random pair is the same one time in a million, and the check of
    # the old code used to be skipped then.
    monkeypatch.setattr(otp, "new_code", iter(["381924", "650217"]).__next__)
    request_otp(client)
    first = otp_sent_to(runtime, TEST_PHONE)
    request_otp(client)
    second = otp_sent_to(runtime, TEST_PHONE)
    assert (first, second) == ("381924", "650217")
    # Only the newest code counts: the old one is a wrong try at it.
    r = verify(client, first)
    assert r.status_code == 422 and err(r) == "INVALID_CODE"
    assert verify(client, second).status_code == 200


def test_an_older_code_left_active_is_never_judged(client, runtime, monkeypatch):
    """Two requests for one number are put in order by its rate-limit counters' row locks,
    except when both counters start a new window at once (midnight UTC): then the second's
    "supersede the active codes" can run before the first's code is committed, and both
    codes stay active. Only the newest is ever judged, also once it is used or burned."""
    import sqlalchemy as sa

    monkeypatch.setattr(otp, "new_code", iter(["381924", "650217", "902113"]).__next__)
    request_otp(client)
    with monkeypatch.context() as m:  # the second request's supersede finds nothing yet
        m.setattr(otp, "update", lambda table: sa.update(table).where(sa.false()))
        request_otp(client)
    assert verify(client, "650217").status_code == 200
    r = verify(client, "381924")
    assert r.status_code == 422 and err(r) == "CODE_EXPIRED", r.get_json()
    # Burned, the newest still stands in front of the older one, which is still active.
    with monkeypatch.context() as m:
        m.setattr(otp, "update", lambda table: sa.update(table).where(sa.false()))
        request_otp(client)
    for _ in range(otp.MAX_ATTEMPTS):
        verify(client, "000000")
    r = verify(client, "381924")
    assert r.status_code == 422 and err(r) == "CODE_EXPIRED", r.get_json()


def test_per_phone_rate_limit_with_retry_after(client, runtime, monkeypatch):
    for _ in range(3):
        assert request_otp(client).status_code == 202
    r = request_otp(client, idem="fourth")
    assert r.status_code == 429 and err(r) == "RATE_LIMITED"
    assert 1 <= int(r.headers["Retry-After"]) <= 15 * 60 + 5 * 60
    assert request_otp(client, OTHER_PHONE).status_code == 202, "other numbers are not affected"
    # The refusal was not stored: once allowed again, the same key runs.
    monkeypatch.setitem(otp.PHONE_RULES, otp.API_LOGIN, ())
    monkeypatch.setattr(otp, "NETWORK_RULES", ())
    r = request_otp(client, idem="fourth")
    assert r.status_code == 202 and "Idempotent-Replayed" not in r.headers


def test_per_phone_daily_cap(client, monkeypatch):
    monkeypatch.setitem(otp.PHONE_RULES, otp.API_LOGIN, (otp.PHONE_RULES[otp.API_LOGIN][1],))
    monkeypatch.setattr(otp, "NETWORK_RULES", (otp.NETWORK_RULES[1],))
    for _ in range(10):
        assert request_otp(client).status_code == 202
    r = request_otp(client)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 3600


def test_one_network_cannot_spend_a_numbers_codes_for_everyone_else(client):
    for _ in range(3):
        assert request_otp(client, ip="41.57.80.1").status_code == 202
    r = request_otp(client, ip="41.57.80.1")
    assert r.status_code == 429 and err(r) == "RATE_LIMITED"
    assert request_otp(client, ip="197.231.221.9").status_code == 202, "the owner's own network still gets one"


def _issue_over_the_api(runtime, ip, now, phone=TEST_PHONE):
    with runtime.uow() as uow:
        otp.issue(uow, runtime, phone, purpose=otp.API_LOGIN, ip=ip, now=now)
        uow.commit()


def _a_day_window_start():
    return utcnow().replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)


def test_one_network_cannot_spend_a_numbers_day_for_everyone_else(runtime):
    t0 = _a_day_window_start()
    for i in range(10):  # one every 16 minutes: the daily cap, not the quarter-hour one
        _issue_over_the_api(runtime, "41.57.80.1", t0 + timedelta(minutes=16 * i))
    later = t0 + timedelta(minutes=16 * 10)
    with pytest.raises(ratelimit.RateLimited) as refused:
        _issue_over_the_api(runtime, "41.57.80.1", later)
    assert refused.value.retry_after > 3600
    _issue_over_the_api(runtime, "197.231.221.9", later)  # the owner's own network: still a code


def test_every_network_together_is_capped_per_number(runtime):
    t0 = _a_day_window_start()
    for i in range(6):
        _issue_over_the_api(runtime, f"41.57.80.{i}", t0)
    with pytest.raises(ratelimit.RateLimited):
        _issue_over_the_api(runtime, "41.57.80.99", t0)
    for i in range(14):  # 20 a day in all, however many networks ask
        _issue_over_the_api(runtime, f"41.57.81.{i}", t0 + timedelta(minutes=31 * (i + 1)))
    with pytest.raises(ratelimit.RateLimited) as refused:
        _issue_over_the_api(runtime, "41.57.82.1", t0 + timedelta(minutes=31 * 15))
    assert refused.value.retry_after > 3600


def test_an_ipv6_network_is_its_64_prefix(client):
    for i in range(3):
        assert request_otp(client, ip=f"2001:db8:1:2::{i + 1}").status_code == 202
    assert request_otp(client, ip="2001:db8:1:2:ffff::9").status_code == 429, "one /64 is one network"
    assert request_otp(client, ip="2001:db8:1:3::1").status_code == 202


def test_sixty_phones_a_minute_from_one_address_all_pass(client):
    for i in range(60):
        r = request_otp(client, f"+2318812{i:05d}", ip="41.57.80.1")
        assert r.status_code == 202, (i, r.get_json())


def test_per_ip_rate_limit(client, monkeypatch):
    monkeypatch.setattr(otp, "IP_RULE", ratelimit.Rule("otp-ip", 5, timedelta(minutes=1), "too many"))
    for i in range(5):
        assert request_otp(client, f"+2318812{i:05d}", ip="41.57.80.1").status_code == 202
    r = request_otp(client, "+231881299999", ip="41.57.80.1")
    assert r.status_code == 429 and err(r) == "RATE_LIMITED" and int(r.headers["Retry-After"]) >= 1
    assert request_otp(client, "+231881299999", ip="41.57.80.2").status_code == 202


def test_ip_limit_default_allows_120_a_minute_then_refuses(runtime):
    now = utcnow().replace(second=0, microsecond=0) + timedelta(minutes=1)
    with runtime.uow() as uow:
        for _ in range(120):
            ratelimit.hit(uow, runtime.secret_key, otp.IP_RULE, "41.57.80.1", now=now)
        with pytest.raises(ratelimit.RateLimited):
            ratelimit.hit(uow, runtime.secret_key, otp.IP_RULE, "41.57.80.1", now=now)


# --- verify-otp -------------------------------------------------------------------------------


def test_verify_otp_logs_in_and_creates_the_user_once(client, runtime):
    first = login(client, runtime)
    assert set(first) == {"access_token", "refresh_token", "token_type", "expires_in", "user"}
    assert first["token_type"] == "Bearer" and first["expires_in"] == 900
    assert first["user"]["phone_number"] == TEST_PHONE and first["user"]["country_code"] == "LR"
    assert first["user"]["id"].startswith("usr_")
    again = login(client, runtime)
    assert again["user"]["id"] == first["user"]["id"]
    assert again["access_token"] != first["access_token"], "each login is its own session"
    set_user_pin(client, first["access_token"])


def test_wrong_code_counts_down_and_the_fifth_burns_it(client, runtime):
    request_otp(client)
    code = otp_sent_to(runtime, TEST_PHONE)
    for left in (4, 3, 2, 1, 0):
        r = verify(client, wrong(code))
        assert r.status_code == 422 and err(r) == "INVALID_CODE"
        assert r.get_json()["error"]["details"] == {"attempts_remaining": left}
    r = verify(client, code)
    assert r.status_code == 422 and err(r) == "CODE_EXPIRED", "even the right code fails once burned"


def test_replaying_a_wrong_try_does_not_count_it_again(client, runtime):
    request_otp(client)
    code = otp_sent_to(runtime, TEST_PHONE)
    a = verify(client, wrong(code), idem="try-1")
    b = verify(client, wrong(code), idem="try-1")
    assert a.get_data() == b.get_data() and b.headers["Idempotent-Replayed"] == "true"
    r = verify(client, wrong(code))
    assert r.get_json()["error"]["details"] == {"attempts_remaining": 3}


def test_expired_code_fails(client, runtime):
    request_otp(client)
    code = otp_sent_to(runtime, TEST_PHONE)
    with runtime.uow() as uow:
        uow.session.execute(update(otp.OtpCode).values(expires_at=utcnow() - timedelta(seconds=1)))
        uow.commit()
    r = verify(client, code)
    assert r.status_code == 422 and err(r) == "CODE_EXPIRED"


def test_expiry_at_the_core_with_an_injected_clock(runtime):
    t0 = utcnow()
    with runtime.uow() as uow:
        otp.issue(uow, runtime, TEST_PHONE, purpose=otp.API_LOGIN, now=t0)
        uow.commit()
    code = otp_sent_to(runtime, TEST_PHONE)
    with runtime.uow() as uow, pytest.raises(otp.CodeExpired):
        otp.verify(uow, runtime, TEST_PHONE, code, purpose=otp.API_LOGIN, now=t0 + otp.VALIDITY)
    with runtime.uow() as uow:
        assert otp.verify(uow, runtime, TEST_PHONE, code, purpose=otp.API_LOGIN,
                          now=t0 + otp.VALIDITY - timedelta(seconds=1))


def test_a_code_works_once(client, runtime):
    request_otp(client)
    code = otp_sent_to(runtime, TEST_PHONE)
    assert verify(client, code).status_code == 200
    r = verify(client, code)
    assert r.status_code == 422 and err(r) == "CODE_EXPIRED"


def test_no_code_requested(client):
    r = verify(client, "123456")
    assert r.status_code == 422 and err(r) == "CODE_EXPIRED"


@pytest.mark.parametrize("code", ["12345", "1234567", "12345a", "", 123456, None, " 123456"])
def test_malformed_codes_are_422_and_do_not_count(client, runtime, code):
    request_otp(client)
    r = verify(client, code)
    assert r.status_code == 422 and err(r) == "VALIDATION_ERROR"
    assert r.get_json()["error"]["details"] == {"field": "code"}
    with runtime.uow() as uow:
        assert uow.session.scalar(select(otp.OtpCode.failed_attempts)) == 0


def test_verify_with_malformed_phone(client):
    r = verify(client, "123456", phone="0881234567")
    assert r.status_code == 422 and err(r) == "INVALID_PHONE_NUMBER"


def test_verify_replay_returns_the_same_tokens(client, runtime):
    request_otp(client)
    code = otp_sent_to(runtime, TEST_PHONE)
    a = verify(client, code, idem="login-1")
    b = verify(client, code, idem="login-1")
    assert a.status_code == b.status_code == 200 and a.get_data() == b.get_data()
    assert b.headers["Idempotent-Replayed"] == "true"
    with runtime.uow() as uow:
        assert len(uow.session.scalars(select(sessions.UserSession)).all()) == 1


# --- access tokens ----------------------------------------------------------------------------


def test_bad_access_tokens_are_401(client, runtime, merchant):
    data = login(client, runtime)
    good = data["access_token"]
    now = utcnow()
    expired = sessions.access_token(runtime.secret_key, data["user"]["id"], "ses_x", now - timedelta(hours=1))
    foreign = sessions.access_token("another-secret", data["user"]["id"], "ses_x", now)
    for tok in (expired, foreign, good[:-3] + "abc", "eyJ.e30.x"):
        r = step_up(client, tok, "1234")
        assert r.status_code == 401 and err(r) == "UNAUTHORIZED", tok
    r = step_up(client, merchant[1], "1234")  # valid, but a key: not a role this route serves
    assert r.status_code == 403 and err(r) == "FORBIDDEN"
    r = Api(client).post("/v1/auth/step-up", {"pin": "1234"})
    assert r.status_code == 401


def test_a_user_token_is_no_merchant_key(client, runtime):
    r = Api(client, login(client, runtime)["access_token"]).get("/v1/merchant")
    assert r.status_code == 403 and err(r) == "FORBIDDEN"


# --- refresh ----------------------------------------------------------------------------------


def test_refresh_rotates(client, runtime):
    data = login(client, runtime)
    r = refresh(client, data["refresh_token"])
    assert r.status_code == 200
    new = r.get_json()["data"]
    assert set(new) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert new["refresh_token"] != data["refresh_token"] and new["access_token"] != data["access_token"]
    assert step_up(client, new["access_token"], "1234").status_code == 409  # authenticated: PIN_NOT_SET
    assert refresh(client, new["refresh_token"]).status_code == 200


def test_reusing_a_spent_refresh_token_ends_the_session(client, runtime):
    data = login(client, runtime)
    other = login(client, runtime)  # another device of the same person
    new = refresh(client, data["refresh_token"]).get_json()["data"]
    assert step_up(client, new["access_token"], "1234").status_code == 409
    r = refresh(client, data["refresh_token"])
    assert r.status_code == 401 and err(r) == "UNAUTHORIZED"
    # The very next request with the session's access token fails, and so does its refresh token.
    r = step_up(client, new["access_token"], "1234")
    assert r.status_code == 401 and err(r) == "UNAUTHORIZED"
    assert step_up(client, data["access_token"], "1234").status_code == 401
    assert refresh(client, new["refresh_token"]).status_code == 401
    # The other session lives on.
    assert step_up(client, other["access_token"], "1234").status_code == 409
    assert refresh(client, other["refresh_token"]).status_code == 200
    with runtime.uow() as uow:
        reasons = {s.revoked_reason for s in uow.session.scalars(select(sessions.UserSession))}
    assert reasons == {"refresh_token_reused", None}


def test_retrying_a_refresh_with_its_key_replays_instead_of_revoking(client, runtime):
    data = login(client, runtime)
    a = refresh(client, data["refresh_token"], idem="r-1")
    b = refresh(client, data["refresh_token"], idem="r-1")
    assert a.get_data() == b.get_data() and b.headers["Idempotent-Replayed"] == "true"
    assert refresh(client, a.get_json()["data"]["refresh_token"]).status_code == 200


@pytest.mark.parametrize("token", ["nope", "sxr_" + "a" * 43, "x" * 200])
def test_unknown_refresh_tokens_are_401(client, token):
    r = refresh(client, token)
    assert r.status_code == 401 and err(r) == "UNAUTHORIZED"


@pytest.mark.parametrize("body", [{}, {"refresh_token": ""}, {"refresh_token": 5}, {"refresh_token": "x" * 201}])
def test_malformed_refresh_bodies_are_422(client, body):
    r = Api(client).post("/v1/auth/refresh", body)
    assert r.status_code == 422 and err(r) == "VALIDATION_ERROR"


def test_expired_refresh_token_is_401(client, runtime):
    data = login(client, runtime)
    with runtime.uow() as uow:
        uow.session.execute(update(sessions.RefreshToken).values(expires_at=utcnow() - timedelta(seconds=1)))
        uow.commit()
    r = refresh(client, data["refresh_token"])
    assert r.status_code == 401 and err(r) == "UNAUTHORIZED"


def test_revoking_a_session_holds_from_the_next_request(client, runtime):
    data = login(client, runtime)
    assert step_up(client, data["access_token"], "1234").status_code == 409
    with runtime.uow() as uow:
        sid = sessions.decode_access_token(runtime.secret_key, data["access_token"])[1]
        assert sessions.revoke(uow, sid) is True
        uow.commit()
    assert step_up(client, data["access_token"], "1234").status_code == 401
    assert refresh(client, data["refresh_token"]).status_code == 401


# --- PIN --------------------------------------------------------------------------------------


def test_set_then_change_pin(client, user_api):
    r = user_api.post("/v1/auth/pin", {"pin": "4821"})
    assert r.status_code == 200 and r.get_json()["data"]["pin_set"] is True
    r = user_api.post("/v1/auth/pin", {"pin": "135790"})
    assert r.status_code == 422 and err(r) == "VALIDATION_ERROR"
    assert r.get_json()["error"]["details"] == {"field": "current_pin"}
    r = user_api.post("/v1/auth/pin", {"pin": "135790", "current_pin": "1111"})
    assert r.status_code == 422 and err(r) == "INVALID_PIN"
    assert r.get_json()["error"]["details"] == {"attempts_remaining": 2}
    r = user_api.post("/v1/auth/pin", {"pin": "135790", "current_pin": "4821"})
    assert r.status_code == 200
    assert step_up(user_api.client, user_api.token, "4821").status_code == 422
    assert step_up(user_api.client, user_api.token, "135790").status_code == 200


@pytest.mark.parametrize("body", [
    {"pin": "123"}, {"pin": "1234567"}, {"pin": "12a4"}, {"pin": 1234}, {"pin": ""}, {},
    {"pin": "1234", "current_pin": "12"}, {"pin": "1234", "extra": True},
])
def test_bad_pins_are_422(user_api, body):
    r = user_api.post("/v1/auth/pin", body)
    assert r.status_code == 422 and err(r) == "VALIDATION_ERROR"


@pytest.mark.parametrize("pin, why", [("1234", "run"), ("0000", "same digit"), ("121212", "repeat"),
                                      ("2468", "run"), ("4567", "your phone number")])
def test_a_pin_anyone_would_guess_is_422_with_the_reason(user_api, pin, why):
    """user_api's number ends in 4567, also a run: the person's own number is said first."""
    r = user_api.post("/v1/auth/pin", {"pin": pin}, idem="weak-pin")
    assert r.status_code == 422 and err(r) == "VALIDATION_ERROR", r.get_json()
    assert r.get_json()["error"]["details"] == {"field": "pin"}
    assert why in r.get_json()["error"]["message"], r.get_json()
    # Refused before anything was done: the same key takes the corrected PIN.
    assert user_api.post("/v1/auth/pin", {"pin": "5739"}, idem="weak-pin").status_code == 200


def test_the_end_of_ones_own_number_is_no_pin(client, runtime):
    api = Api(client, login(client, runtime, "+231886100077")["access_token"])
    r = api.post("/v1/auth/pin", {"pin": "100077"})
    assert r.status_code == 422 and "your phone number" in r.get_json()["error"]["message"]
    r = api.post("/v1/auth/pin", {"pin": "4821"})
    assert r.status_code == 200
    r = api.post("/v1/auth/pin", {"pin": "0077", "current_pin": "4821"})
    assert r.status_code == 422 and r.get_json()["error"]["details"] == {"field": "pin"}


def test_pin_routes_need_a_user(client, api):
    assert Api(client).post("/v1/auth/pin", {"pin": "1234"}).status_code == 401
    assert api.post("/v1/auth/pin", {"pin": "1234"}).status_code == 403, "merchant keys have no PIN"


def test_three_wrong_pins_lock_for_fifteen_minutes(client, runtime, user_api):
    set_user_pin(client, user_api.token, "4821")
    for left in (2, 1):
        r = step_up(client, user_api.token, "0000")
        assert r.status_code == 422 and r.get_json()["error"]["details"] == {"attempts_remaining": left}
    r = step_up(client, user_api.token, "0000")
    assert r.status_code == 429 and err(r) == "PIN_LOCKED" and int(r.headers["Retry-After"]) == 900
    r = step_up(client, user_api.token, "4821")
    assert r.status_code == 429 and err(r) == "PIN_LOCKED", "even the right PIN, while locked"
    assert 1 <= int(r.headers["Retry-After"]) <= 900
    r = user_api.post("/v1/auth/pin", {"pin": "5173", "current_pin": "4821"})
    assert r.status_code == 429 and err(r) == "PIN_LOCKED", "changing it is locked too"
    with runtime.uow() as uow:
        uow.session.execute(update(pins.UserPin).values(locked_until=utcnow() - timedelta(seconds=1)))
        uow.commit()
    assert step_up(client, user_api.token, "4821").status_code == 200


def test_each_lockout_in_a_row_lasts_twice_the_last_until_a_right_pin(client, runtime, user_api):
    """15 minutes, then 30, 60…, up to a day; a right PIN starts again from 15."""
    set_user_pin(client, user_api.token, "4821")

    def lock_out() -> tuple[int, str]:
        with runtime.uow() as uow:  # the last lockout has passed
            uow.session.execute(update(pins.UserPin).values(locked_until=utcnow() - timedelta(seconds=1)))
            uow.commit()
        for _ in range(2):
            assert step_up(client, user_api.token, "0000").status_code == 422
        r = step_up(client, user_api.token, "0000")
        assert r.status_code == 429 and err(r) == "PIN_LOCKED"
        return int(r.headers["Retry-After"]), r.get_json()["error"]["message"]

    locks = [lock_out() for _ in range(4)]
    assert [seconds for seconds, _ in locks] == [900, 1800, 3600, 7200]
    assert locks[0][1].endswith("locked for 15 minutes") and locks[3][1].endswith("locked for 2 hours")
    assert pins.lockout_after(8) == pins.lockout_after(30) == timedelta(hours=24)
    with runtime.uow() as uow:
        uow.session.execute(update(pins.UserPin).values(locked_until=utcnow() - timedelta(seconds=1)))
        uow.commit()
    assert step_up(client, user_api.token, "4821").status_code == 200
    assert lock_out()[0] == 900, "a right PIN starts the count again"


def test_a_successful_pin_resets_the_count(client, user_api):
    set_user_pin(client, user_api.token, "4821")
    for _ in range(3):
        assert step_up(client, user_api.token, "0000").status_code == 422
        assert step_up(client, user_api.token, "0000").status_code == 422
        assert step_up(client, user_api.token, "4821").status_code == 200


def test_the_bots_wrong_pins_count_towards_the_same_lockout(client, runtime, user_api):
    set_user_pin(client, user_api.token, "4821")
    for _ in range(2):
        with runtime.uow() as uow:
            with pytest.raises(pins.WrongPin):
                pins.verify(uow, user_api.user_id, "9999")
            uow.commit()  # as the bot does, recording its reply
    r = step_up(client, user_api.token, "0000")
    assert r.status_code == 429 and err(r) == "PIN_LOCKED"
    with runtime.uow() as uow, pytest.raises(pins.PinLocked):
        pins.verify(uow, user_api.user_id, "4821")


def test_a_first_pin_that_lost_a_race_is_409_and_the_first_pin_stands(client, runtime, user_api, monkeypatch):
    """Another device set the PIN just after this request looked and found none: this
    request must not overwrite it without the current PIN."""
    with runtime.uow() as uow:
        pins.set_pin(uow, user_api.user_id, "5173")
        uow.commit()
    monkeypatch.setattr(pins, "has_pin", lambda uow, user_id: False)  # what the look saw
    r = set_pin(client, user_api.token, {"pin": "4821"})
    monkeypatch.undo()
    # What it would have been told a moment later: a PIN is set, send current_pin.
    assert r.status_code == 422 and err(r) == "VALIDATION_ERROR", r.get_json()
    assert r.get_json()["error"]["details"] == {"field": "current_pin"}
    assert step_up(client, user_api.token, "5173").status_code == 200
    assert step_up(client, user_api.token, "4821").status_code == 422


def test_a_change_that_lost_a_race_is_409_not_last_write_wins(client, runtime, user_api, monkeypatch):
    """Between this change's check of the current PIN and its write, another change (with
    the right current PIN too) went through: this one must not write over it."""
    set_user_pin(client, user_api.token, "4821")
    real_confirm = pins.confirm

    def confirm_then_lose(rt, user_id, pin, **kw):
        checked = real_confirm(rt, user_id, pin, **kw)
        with rt.uow() as other:
            pins.set_pin(other, user_id, "5173", current_pin="4821")
            other.commit()
        return checked

    monkeypatch.setattr(pins, "confirm", confirm_then_lose)
    r = set_pin(client, user_api.token, {"pin": "6390", "current_pin": "4821"})
    monkeypatch.undo()
    assert r.status_code == 409 and err(r) == "INVALID_STATE", r.get_json()
    assert step_up(client, user_api.token, "5173").status_code == 200
    assert step_up(client, user_api.token, "6390").status_code == 422


def test_step_up_without_a_pin_is_409(user_api):
    r = step_up(user_api.client, user_api.token, "1234")
    assert r.status_code == 409 and err(r) == "PIN_NOT_SET"


# --- step-up ----------------------------------------------------------------------------------


def test_step_up_token_lasts_five_minutes_for_its_user_only(client, runtime, user_api):
    set_user_pin(client, user_api.token, "4821")
    r = step_up(client, user_api.token, "4821")
    assert r.status_code == 200
    data = r.get_json()["data"]
    assert data["expires_in"] == 300 and data["step_up_token"].startswith("sxs_")
    tok = data["step_up_token"]
    other = login(client, runtime, OTHER_PHONE)
    other_user, other_sid = other["user"]["id"], sessions.decode_access_token(
        runtime.secret_key, other["access_token"])[1]
    sid = sessions.decode_access_token(runtime.secret_key, user_api.token)[1]
    with runtime.uow() as uow:
        now = uow.session.scalar(select(pins.StepUpToken.created_at))
    with runtime.uow() as uow:
        pins.check_step_up(uow, runtime, user_api.user_id, sid, tok, now=now)
        pins.check_step_up(uow, runtime, user_api.user_id, sid, tok, now=now + timedelta(seconds=299))
        for who, session, token, at in [(user_api.user_id, sid, tok, now + timedelta(seconds=301)),
                                        (other_user, other_sid, tok, now),
                                        (other_user, sid, tok, now),
                                        (user_api.user_id, other_sid, tok, now),
                                        (user_api.user_id, sid, None, now),
                                        (user_api.user_id, sid, "sxs_forged", now),
                                        (user_api.user_id, sid, tok + "x", now)]:
            with pytest.raises(pins.Forbidden) as e:
                pins.check_step_up(uow, runtime, who, session, token, now=at)
            assert e.value.code == "STEP_UP_REQUIRED"


def test_require_step_up_reads_the_header_for_users_only(app, runtime, user_api):
    from api.auth import Principal, require_step_up
    from api.endpoint import Ctx
    from core.errors import Forbidden

    set_user_pin(user_api.client, user_api.token, "4821")
    tok = step_up_token(user_api.client, user_api.token, "4821")
    user = Principal(kind="user", user_id=user_api.user_id,
                     session_id=sessions.decode_access_token(runtime.secret_key, user_api.token)[1])
    with runtime.uow() as uow:
        with app.test_request_context(headers={"X-Step-Up-Token": tok}):
            require_step_up(Ctx(runtime=runtime, uow=uow, principal=user))
        with app.test_request_context():
            with pytest.raises(Forbidden) as e:
                require_step_up(Ctx(runtime=runtime, uow=uow, principal=user))
            assert e.value.code == "STEP_UP_REQUIRED"
            require_step_up(Ctx(runtime=runtime, uow=uow, principal=Principal(kind="key", merchant_id="mer_x")))


def _fund(runtime, phone):
    from core.wallets import sandbox

    with runtime.uow() as uow:
        sandbox.make_buyer(uow, phone)
        uow.commit()


def _transfer(client, access_token, step_up_tok):
    """A user's money move carrying the step-up token: 201, or 403 when the token is no good."""
    r = Api(client, access_token).post("/v1/transfers", {"amount": 100, "currency": "USD",
                                                         "to_phone_number": OTHER_PHONE},
                                       headers={"X-Step-Up-Token": step_up_tok})
    return r.status_code, (r.get_json().get("error") or {}).get("code")


def test_a_step_up_token_ends_when_the_pin_changes(client, runtime, user_api):
    _fund(runtime, user_api.phone)
    set_user_pin(client, user_api.token, "4821")
    tok = step_up_token(client, user_api.token, "4821")
    assert _transfer(client, user_api.token, tok) == (201, None)
    assert set_pin(client, user_api.token, {"pin": "5173", "current_pin": "4821"}).status_code == 200
    assert _transfer(client, user_api.token, tok) == (403, "STEP_UP_REQUIRED")
    fresh = step_up_token(client, user_api.token, "5173")
    assert _transfer(client, user_api.token, fresh) == (201, None)


def test_a_step_up_token_ends_with_its_session_and_serves_no_other(client, runtime):
    first = login(client, runtime)
    _fund(runtime, TEST_PHONE)
    set_user_pin(client, first["access_token"], "4821")
    tok = step_up_token(client, first["access_token"], "4821")
    rotated = refresh(client, first["refresh_token"])
    assert rotated.status_code == 200, "a refresh keeps the session, and its step-up"
    assert _transfer(client, rotated.get_json()["data"]["access_token"], tok) == (201, None)
    # The spent refresh token is presented again (a copy is in other hands): the session ends.
    assert refresh(client, first["refresh_token"]).status_code == 401
    again = login(client, runtime)  # its owner logs in again
    assert _transfer(client, again["access_token"], tok) == (403, "STEP_UP_REQUIRED")
    # A step-up token proves the PIN in the session that confirmed it, not in another.
    other = login(client, runtime)
    mine = step_up_token(client, again["access_token"], "4821")
    assert _transfer(client, other["access_token"], mine) == (403, "STEP_UP_REQUIRED")
    assert _transfer(client, again["access_token"], mine) == (201, None)


def test_check_step_up_refuses_a_revoked_sessions_token_whoever_asks(client, runtime, user_api):
    set_user_pin(client, user_api.token, "4821")
    tok = step_up_token(client, user_api.token, "4821")
    sid = sessions.decode_access_token(runtime.secret_key, user_api.token)[1]
    with runtime.uow() as uow:
        pins.check_step_up(uow, runtime, user_api.user_id, sid, tok)
        assert sessions.revoke(uow, sid, reason="logout")
        uow.commit()
    with runtime.uow() as uow, pytest.raises(pins.Forbidden) as e:
        pins.check_step_up(uow, runtime, user_api.user_id, sid, tok)
    assert e.value.code == "STEP_UP_REQUIRED"


def test_step_up_replay_gives_the_same_token(user_api):
    set_user_pin(user_api.client, user_api.token, "4821")
    a = step_up(user_api.client, user_api.token, "4821", idem="s-1")
    b = step_up(user_api.client, user_api.token, "4821", idem="s-1")
    assert a.get_data() == b.get_data() and b.headers["Idempotent-Replayed"] == "true"


# --- no secret in clear at rest ---------------------------------------------------------------


def test_no_code_pin_or_token_is_stored_in_clear(client, runtime):
    from core.models import metadata

    request_otp(client)
    code = otp_sent_to(runtime, TEST_PHONE)
    verify(client, wrong(code))
    data = verify(client, code).get_json()["data"]
    token = data["access_token"]
    secrets_seen = {code, wrong(code), data["refresh_token"], token}
    set_pin(client, token, {"pin": "739184"})
    set_pin(client, token, {"pin": "582061", "current_pin": "739184"})
    set_pin(client, token, {"pin": "111111", "current_pin": "964305"})  # a wrong one, counted
    stp = step_up(client, token, "582061").get_json()["data"]["step_up_token"]
    new = refresh(client, data["refresh_token"]).get_json()["data"]
    secrets_seen |= {"739184", "582061", "964305", stp, new["refresh_token"], new["access_token"]}

    dump = []
    with runtime.engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(text(f'SELECT * FROM "{table.name}"')):
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        value = bytes(value).decode("latin-1")
                    dump.append(str(value))
    blob = "\n".join(dump)
    assert "usr_" in blob and "argon2id" in blob, "the scan sees the rows"
    leaked = [s for s in secrets_seen if s in blob]
    assert leaked == []


# --- PostgreSQL: concurrency ------------------------------------------------------------------


@pytest.fixture
def pg_app(pg_runtime):
    from api.app import create_app

    return create_app(runtime=pg_runtime)


@pytest.mark.postgres
def test_two_concurrent_refreshes_exactly_one_succeeds(pg_app, pg_runtime):
    data = login(pg_app.test_client(), pg_runtime)
    results = at_once(2, lambda i: refresh(pg_app.test_client(), data["refresh_token"]).status_code)
    assert sorted(results) == [200, 401]
    with pg_runtime.uow() as uow:
        spent = uow.session.scalars(select(sessions.RefreshToken).where(
            sessions.RefreshToken.used_at.is_not(None))).all()
        assert len(spent) == 1, "one rotation, not two"


@pytest.mark.postgres
def test_concurrent_guesses_never_exceed_five(pg_app, pg_runtime):
    request_otp(pg_app.test_client())
    code = otp_sent_to(pg_runtime, TEST_PHONE)
    results = at_once(10, lambda i: err(verify(pg_app.test_client(), wrong(code))))
    assert results.count("INVALID_CODE") == 5 and results.count("CODE_EXPIRED") == 5
    assert err(verify(pg_app.test_client(), code)) == "CODE_EXPIRED"


@pytest.mark.postgres
def test_concurrent_right_codes_log_in_once(pg_app, pg_runtime):
    request_otp(pg_app.test_client())
    code = otp_sent_to(pg_runtime, TEST_PHONE)
    results = at_once(5, lambda i: verify(pg_app.test_client(), code).status_code)
    assert sorted(results) == [200, 422, 422, 422, 422]


@pytest.mark.postgres
def test_concurrent_requests_respect_the_phone_limit(pg_app):
    results = at_once(8, lambda i: request_otp(pg_app.test_client()).status_code)
    assert sorted(results) == [202] * 3 + [429] * 5


@pytest.mark.postgres
def test_concurrent_wrong_pins_lock_after_three(pg_app, pg_runtime):
    client = pg_app.test_client()
    token = login(client, pg_runtime)["access_token"]
    set_user_pin(client, token, "4821")
    results = at_once(6, lambda i: err(step_up(pg_app.test_client(), token, "0000")))
    assert results.count("INVALID_PIN") == 2 and results.count("PIN_LOCKED") == 4


def _pin_is(rt, user_id, pin) -> tuple[bool, int]:
    """Whether `pin` is the user's PIN now, and the PIN's version."""
    from core.crypto import slow_verify

    with rt.uow() as uow:
        row = uow.session.get(pins.UserPin, user_id)
        return slow_verify(row.pin_hash, pin), row.version


@pytest.mark.postgres
def test_ten_concurrent_first_pins_one_wins(pg_app, pg_runtime):
    client = pg_app.test_client()
    data = login(client, pg_runtime)
    token, user_id = data["access_token"], data["user"]["id"]

    def first_pin(i):
        r = set_pin(pg_app.test_client(), token, {"pin": f"{1000 + i}"})
        return i, r.status_code, (r.get_json().get("error") or {}).get("code")

    results = at_once(10, first_pin)
    assert sorted(status for _, status, _ in results) == [200] + [422] * 9, results
    assert {code for _, status, code in results if status == 422} == {"VALIDATION_ERROR"}
    winner = next(i for i, status, _ in results if status == 200)
    assert _pin_is(pg_runtime, user_id, f"{1000 + winner}") == (True, 1)


@pytest.mark.postgres
def test_eight_concurrent_changes_with_the_right_pin_one_wins(pg_app, pg_runtime):
    client = pg_app.test_client()
    data = login(client, pg_runtime)
    token, user_id = data["access_token"], data["user"]["id"]
    set_user_pin(client, token, "4821")

    def change(i):
        r = set_pin(pg_app.test_client(), token, {"pin": f"{2000 + i}", "current_pin": "4821"})
        return i, r.status_code, (r.get_json().get("error") or {}).get("code")

    results = at_once(8, change)
    assert [status for _, status, _ in results].count(200) == 1, results
    # The rest: the PIN changed under them (409), or their check came after the change, when
    # 4821 was no longer the PIN (422, counted; the third such try locks it: 429).
    assert {(status, code) for _, status, code in results if status != 200} <= {
        (409, "INVALID_STATE"), (422, "INVALID_PIN"), (429, "PIN_LOCKED")}, results
    winner = next(i for i, status, _ in results if status == 200)
    # The winner's PIN, not the last writer's, and one change, not eight.
    assert _pin_is(pg_runtime, user_id, f"{2000 + winner}") == (True, 2)
