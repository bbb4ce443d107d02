"""Inputs no column can store, and cursors we never gave out: refused, never a 500.

Found by fuzzing on PostgreSQL (NUL characters) and on both backends (lone surrogates,
forged cursors); kept here as plain regression tests on every backend.
"""

from __future__ import annotations

import base64

import pytest


def _err(r):
    body = r.get_json()
    assert body["success"] is False, body
    return r.status_code, body["error"]["code"]


def _cursor(key: str) -> str:
    return base64.urlsafe_b64encode(("c1:" + key).encode()).decode().rstrip("=")


def _post(api, path, data=b"{}", idem="edge-1"):
    return api.client.post(path, data=data, content_type="application/json",
                           headers={"Authorization": f"Bearer {api.token}", "X-Idempotency-Key": idem})


@pytest.mark.parametrize("path", ["/v1/merchant/api-keys/a%00b/revoke", "/v1/merchant/api-keys/%00/revoke"])
def test_nul_in_a_path_parameter_is_404(api, path):
    assert _err(_post(api, path)) == (404, "NOT_FOUND")


@pytest.mark.parametrize("body", [b'{"name": "a\\u0000b"}', b'{"name": "a\\ud800b"}',
                                  b'{"scopes": ["payments:read\\u0000"]}', b'{"name\\u0000": "x"}'])
def test_nul_or_lone_surrogate_in_the_body_is_422(api, body):
    status, code = _err(_post(api, "/v1/merchant/api-keys", body))
    assert (status, code) == (422, "VALIDATION_ERROR")


def test_nul_in_the_idempotency_key_is_400(api):
    assert _err(_post(api, "/v1/merchant/api-keys", idem="a\x00b")) == (400, "BAD_REQUEST")


@pytest.mark.parametrize("cursor", [
    _cursor("key_\x00"), _cursor("key_x\u00e9"), _cursor("\u00b2"), _cursor("9" * 30), _cursor(""),
    _cursor("a b"), "%00", "not-base64!", "YzE6",
])
def test_forged_cursors_are_422(api, cursor):
    r = api.get("/v1/merchant/api-keys", cursor=cursor)
    assert _err(r) == (422, "VALIDATION_ERROR")


def test_nul_in_a_query_value_is_422(api):
    r = api.get("/v1/merchant/api-keys", cursor="a\x00")
    assert _err(r) == (422, "VALIDATION_ERROR")


def test_real_cursors_still_page(api):
    for i in range(3):
        assert api.post("/v1/merchant/api-keys", {"name": f"k{i}"}).status_code == 201
    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        data = api.get("/v1/merchant/api-keys", **params).get_json()["data"]
        seen += [k["id"] for k in data["items"]]
        cursor = data["next_cursor"]
        if not data["has_more"]:
            break
    assert len(seen) == len(set(seen)) == 4


# --- bodies the parser must bound (issue 10, point 5) --------------------------------------


def _anonymous_post(client, path, data, content_type="application/json"):
    return client.post(path, data=data, content_type=content_type, headers={"X-Idempotency-Key": "deep-1"})


def _nested(depth: int, inner: bytes = b"1") -> bytes:
    """A body whose deepest value sits `depth` containers down, the body itself the first."""
    return b'{"phone_number": ' + b"[" * (depth - 1) + inner + b"]" * (depth - 1) + b"}"


@pytest.mark.parametrize("body", [
    b'{"phone_number": ' + b"[" * 330 + b"]" * 330 + b"}",  # 676 bytes: the report
    b"[" * 100_000,                                          # deeper than json.loads can go
    b'{"a": ' * 50_000,
    _nested(33),                                             # one over the limit
    b'{"phone_number": "x", "z": ' + b'{"a": [' * 17 + b"1" + b"]}" * 17 + b"}",
])
def test_deeply_nested_json_is_400_without_any_login(client, body):
    assert _err(_anonymous_post(client, "/v1/auth/request-otp", body)) == (400, "BAD_REQUEST")


def test_thirty_two_levels_are_parsed_and_brackets_inside_strings_are_text(client, api):
    # 32 levels reach validation (the phone number is wrong, not the JSON)
    assert _err(_anonymous_post(client, "/v1/auth/request-otp", _nested(32))) == (422, "INVALID_PHONE_NUMBER")
    r = _post(api, "/v1/merchant/api-keys", b'{"name": "' + b"[{" * 60 + b'\\"]"}', idem="deep-2")
    assert r.status_code == 201 and r.get_json()["data"]["name"] == "[{" * 60 + '"]'


@pytest.mark.parametrize("body", [
    b'{"phone_number": NaN}', b'{"phone_number": Infinity}', b'{"phone_number": -Infinity}',
    b'{"phone_number": 1e999999}', b'{"phone_number": -1e400}',
    b'{"phone_number": ' + b"9" * 5000 + b"}",   # past Python's int-string limit
])
def test_numbers_json_does_not_have_or_no_float_can_hold_are_400(client, body):
    assert _err(_anonymous_post(client, "/v1/auth/request-otp", body)) == (400, "BAD_REQUEST")


def test_large_but_finite_numbers_and_long_strings_are_values_to_validate(client, api):
    big = b'{"amount": ' + b"9" * 4000 + b', "currency": "USD", "to_phone_number": "+231881234567"}'
    assert _err(_post(api, "/v1/transfers", big, idem="big-1")) == (422, "AMOUNT_TOO_LARGE")
    huge_float = b'{"amount": 1e308, "currency": "USD", "to_phone_number": "+231881234567"}'
    assert _err(_post(api, "/v1/transfers", huge_float, idem="big-2")) == (422, "VALIDATION_ERROR")
    long_name = b'{"name": "' + b"a" * 900_000 + b'"}'
    assert _err(_post(api, "/v1/merchant/api-keys", long_name, idem="big-3")) == (422, "VALIDATION_ERROR")


def test_a_utf16_body_is_still_read(client):
    body = '{"phone_number": "+231881234567"}'.encode("utf-16")
    assert _anonymous_post(client, "/v1/auth/request-otp", body).status_code == 202


@pytest.mark.parametrize("token", [
    # a JWT's header and payload are JSON too, decoded before the signature is known bad
    base64.urlsafe_b64encode(b"[" * 100_000).decode().rstrip("=") + ".e30.c2ln",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + base64.urlsafe_b64encode(b"[" * 100_000).decode().rstrip("=") + ".c2ln",
    "x" * 100_000,
    "sxm_test_" + "A" * 100_000,
])
def test_absurd_bearer_tokens_are_401(client, token):
    r = client.get("/v1/wallets", headers={"Authorization": f"Bearer {token}"})
    assert _err(r) == (401, "UNAUTHORIZED")


@pytest.mark.parametrize("params", [{"limit": "9" * 5000}, {"limit": "1e999"}, {"cursor": "Y" * 100_000}])
def test_absurd_query_values_are_422(api, params):
    assert _err(api.get("/v1/merchant/api-keys", **params)) == (422, "VALIDATION_ERROR")


def test_the_sandbox_signing_helper_bounds_its_json_too(client):
    for body in (b"[" * 100_000, b'{"phone": ' + b"[" * 40 + b"]" * 40 + b"}", b"[1]", b'{"phone": NaN}'):
        r = _anonymous_post(client, "/dev/whatsapp/sign", body)
        assert r.status_code in (400, 422) and r.get_json()["success"] is False, (body[:20], r.status_code)
