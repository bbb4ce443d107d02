"""Login codes, tokens, PIN format, masking and rate-limit arithmetic: no database."""

from __future__ import annotations

from datetime import timedelta

import jwt
import pytest

from core import ratelimit
from core.crypto import derive_key, slow_hash
from core.db import utcnow
from core.errors import InvalidInput
from core.identity import otp, pins, sessions
from core.messaging import outbox

SECRET = "unit-secret"


# --- OTP codes -------------------------------------------------------------------------------


def test_codes_are_six_digits_and_vary():
    codes = {otp.new_code() for _ in range(200)}
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    assert len(codes) > 190, "random, not a counter"
    assert any(c.startswith("0") for c in (otp.new_code() for _ in range(3000))), "leading zeros kept"


def _row(code: str, **kw) -> otp.OtpCode:
    now = utcnow()
    base = dict(id="otp_x", phone_number="+231881234567", purpose="login", code_hash=slow_hash(code),
                status="active", failed_attempts=0, created_at=now, expires_at=now + otp.VALIDITY)
    base.update(kw)
    return otp.OtpCode(**base)


def test_right_code_passes_and_hash_is_not_the_code():
    row = _row("123456")
    assert "123456" not in row.code_hash and row.code_hash.startswith("$argon2id$")
    otp.check(row, "123456", utcnow())
    assert row.failed_attempts == 0


def test_five_wrong_tries_burn_the_code():
    row = _row("123456")
    for left in (4, 3, 2, 1, 0):
        with pytest.raises(otp.InvalidCode) as e:
            otp.check(row, "000000", utcnow())
        assert e.value.details == {"attempts_remaining": left}
    assert row.status == "burned"
    with pytest.raises(otp.CodeExpired):
        otp.check(row, "123456", utcnow())


def test_code_expires_after_five_minutes():
    row = _row("123456")
    otp.check(row, "123456", row.created_at + otp.VALIDITY - timedelta(seconds=1))
    with pytest.raises(otp.CodeExpired):
        otp.check(row, "123456", row.created_at + otp.VALIDITY)


@pytest.mark.parametrize("status", ["used", "superseded", "burned"])
def test_only_active_codes_count(status):
    with pytest.raises(otp.CodeExpired):
        otp.check(_row("123456", status=status), "123456", utcnow())
    with pytest.raises(otp.CodeExpired):
        otp.check(None, "123456", utcnow())


@pytest.mark.parametrize("purpose", otp.PURPOSES)
def test_otp_message_carries_the_code_and_masks_it_for_the_transcript(purpose):
    body = otp.message_for("042017", purpose)
    assert "042017" in body
    masked = outbox.mask(body, ["042017"])
    assert "042017" not in masked and outbox.MASK in masked


def test_an_api_code_says_it_is_not_for_the_chat():
    assert "not in this chat" in otp.message_for("042017", otp.API_LOGIN)
    assert "not in this chat" not in otp.message_for("042017", otp.CHAT_LOGIN)


# --- masking ---------------------------------------------------------------------------------


def test_mask_is_fixed_width_and_refuses_what_it_cannot_find():
    assert outbox.mask("PIN 1234 and 123456", ["1234"]) == f"PIN {outbox.MASK} and {outbox.MASK}56"
    assert outbox.mask("a 987654 b", ["987654"]) == outbox.mask("a 9876 b", ["9876"])
    with pytest.raises(ValueError):
        outbox.mask("no secret here", ["123456"])
    with pytest.raises(ValueError):
        outbox.mask("x", [""])
    assert outbox.mask("plain", None) == "plain"


# --- access tokens ---------------------------------------------------------------------------


def test_access_token_round_trip_and_expiry():
    now = utcnow()
    tok = sessions.access_token(SECRET, "usr_1", "ses_1", now)
    assert sessions.decode_access_token(SECRET, tok) == ("usr_1", "ses_1")
    claims = jwt.decode(tok, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 900 and claims["typ"] == "access"
    old = sessions.access_token(SECRET, "usr_1", "ses_1", now - sessions.ACCESS_TTL - timedelta(seconds=5))
    assert sessions.decode_access_token(SECRET, old) is None
    assert sessions.access_token(SECRET, "usr_1", "ses_1", now) != tok, "every token distinct"


def test_forged_or_foreign_tokens_are_refused():
    now = utcnow()
    tok = sessions.access_token(SECRET, "usr_1", "ses_1", now)
    assert sessions.decode_access_token("another-secret", tok) is None
    claims = {"sub": "usr_1", "sid": "ses_1", "typ": "access", "exp": int(now.timestamp()) + 60}
    unsigned = jwt.encode(claims, None, algorithm="none")
    assert sessions.decode_access_token(SECRET, unsigned) is None
    refresh_typ = jwt.encode({**claims, "typ": "refresh"}, derive_key(SECRET, "access-token"), "HS256")
    assert sessions.decode_access_token(SECRET, refresh_typ) is None
    no_sid = jwt.encode({"sub": "usr_1", "typ": "access", "exp": claims["exp"]},
                        derive_key(SECRET, "access-token"), "HS256")
    assert sessions.decode_access_token(SECRET, no_sid) is None
    for junk in ("", "abc", "a.b.c", tok[:-2]):
        assert sessions.decode_access_token(SECRET, junk) is None


# --- PIN format ------------------------------------------------------------------------------


@pytest.mark.parametrize("pin", ["1234", "00000", "987654"])
def test_pin_format_accepts_4_to_6_digits(pin):
    assert pins.check_format(pin) == pin


@pytest.mark.parametrize("pin", ["123", "1234567", "12a4", " 1234", "١٢٣٤", 1234, None, ""])
def test_pin_format_refuses_everything_else(pin):
    with pytest.raises(InvalidInput):
        pins.check_format(pin)


@pytest.mark.parametrize("pin, why", [
    ("1234", "run"), ("4321", "run"), ("123456", "run"), ("987654", "run"), ("2468", "run"),
    ("13579", "run"), ("8642", "run"), ("7890", "run"), ("0987", "run"), ("0369", "run"),
    ("0000", "same digit"), ("1111", "same digit"), ("999999", "same digit"),
    ("1212", "repeat"), ("121212", "repeat"), ("123123", "repeat"), ("9090", "repeat"),
    ("4567", "run"), ("234567", "run"),
])
def test_pins_anyone_would_guess_are_refused_with_a_reason(pin, why):
    reason = pins.weakness(pin, "+231886100077")
    assert reason is not None and why in reason, (pin, reason)


@pytest.mark.parametrize("pin", ["0077", "00077", "100077", "6100077"[-6:]])
def test_the_end_of_the_persons_own_number_is_refused(pin):
    assert "your phone number" in pins.weakness(pin, "+231886100077")
    assert pins.weakness(pin, "+231881234599") is None


@pytest.mark.parametrize("pin", ["4821", "5739", "135790", "739184", "582061", "2000", "9157", "1122"])
def test_pins_without_a_pattern_are_taken(pin):
    assert pins.weakness(pin, "+231886100077") is None


# --- rate-limit arithmetic -------------------------------------------------------------------


def test_sliding_window_weights_the_previous_window():
    assert ratelimit.weighted_count(0, 5, 0.3) == 5
    assert ratelimit.weighted_count(10, 0, 0.5) == 5
    assert ratelimit.weighted_count(10, 2, 1.0) == 2


def test_retry_after_is_when_one_more_fits():
    # 3 per 900 s, all 3 used early in this window: wait for the next window and then
    # for enough of this one to slide out (3 * (1 - f) + 1 <= 3 → f >= 1/3).
    wait = ratelimit.seconds_until_allowed(0, 3, 3, 0.1, 900)
    assert wait == pytest.approx(0.9 * 900 + 300, abs=1)
    # Previous window full, this one empty, half-way: 10 * (1 - f) + 1 <= 10 → f >= 0.1…
    assert ratelimit.seconds_until_allowed(10, 0, 10, 0.05, 60) in (3, 4)
    assert ratelimit.seconds_until_allowed(0, 0, 3, 0.5, 60) >= 1
