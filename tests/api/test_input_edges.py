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
