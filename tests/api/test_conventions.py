"""CONTRACT.md section 1, through the HTTP client, on routes that exist today."""

from __future__ import annotations

import json

import pytest


def err(resp):
    body = resp.get_json()
    assert body["success"] is False, body
    assert resp.headers.get("X-Trace-Id"), "every response carries X-Trace-Id"
    return body["error"]["code"]


def test_unknown_route_is_enveloped_404(client):
    r = client.get("/v1/nope")
    assert r.status_code == 404 and err(r) == "NOT_FOUND"


def test_wrong_method_is_405(api):
    r = api.client.delete("/v1/merchant", headers={"Authorization": f"Bearer {api.token}"})
    assert r.status_code == 405 and err(r) == "METHOD_NOT_ALLOWED"


def test_a_sibling_routes_word_is_no_object_id(client, runtime):
    """`GET /v1/transfers/claim` is the claim route with the wrong method, not a search for
    a transfer called "claim"; an id of no object's shape is 404 like a missing one."""
    from tests.conftest import Api, user_token

    user = Api(client, user_token(client, runtime))
    r = user.get("/v1/transfers/claim")
    assert r.status_code == 405 and err(r) == "METHOD_NOT_ALLOWED" and "POST" in r.headers["Allow"]
    for path in ("/v1/transfers/claim-me", "/v1/transfers/tr_missing1", "/v1/wallets/WAL_x"):
        r = user.get(path)
        assert r.status_code == 404 and err(r) == "NOT_FOUND", path


@pytest.mark.parametrize("header", [
    None, "Bearer", "Bearer ", "Basic abc", "Bearer sxm_test_short",
    "Bearer sxm_test_AAAAAAAAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "Bearer not-a-token",
])
def test_bad_bearer_is_401(client, merchant, header):
    headers = {"Authorization": header} if header else {}
    r = client.get("/v1/merchant", headers=headers)
    assert r.status_code == 401 and err(r) == "UNAUTHORIZED"


def test_a_valid_token_of_the_other_kind_is_403_an_invalid_one_401(client, runtime, api):
    """A user's token on a merchant route, a key on a user's route: a role the route does
    not serve (403). A token that is not valid stays 401 on either kind of route."""
    from tests.conftest import Api, user_token

    user = Api(client, user_token(client, runtime))
    r = user.get("/v1/merchant")
    assert r.status_code == 403 and err(r) == "FORBIDDEN" and "API key" in r.get_json()["error"]["message"]
    r = api.post("/v1/auth/step-up", {"pin": "2468"})
    assert r.status_code == 403 and err(r) == "FORBIDDEN"
    r = Api(client, "sxm_test_AAAAAAAAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").post("/v1/auth/step-up", {"pin": "2468"})
    assert r.status_code == 401 and err(r) == "UNAUTHORIZED"
    r = Api(client, "not-a-token").post("/v1/auth/step-up", {"pin": "2468"})
    assert r.status_code == 401 and err(r) == "UNAUTHORIZED"


def test_success_envelope_and_trace_ids_differ(api):
    a = api.get("/v1/merchant")
    b = api.get("/v1/merchant")
    assert a.status_code == 200 and a.get_json()["success"] is True
    assert a.headers["X-Trace-Id"] != b.headers["X-Trace-Id"]


def test_missing_scope_is_403_naming_it(client, runtime):
    from tests.conftest import Api, create_merchant

    _, key = create_merchant(runtime, scopes=["payments:read"])
    r = Api(client, key).get("/v1/merchant")
    assert r.status_code == 403 and err(r) == "FORBIDDEN"
    assert "merchant:read" in r.get_json()["error"]["message"]


def test_mutation_needs_idempotency_key(api):
    r = api.post("/v1/merchant/api-keys", {}, idem=False)
    assert r.status_code == 400 and err(r) == "IDEMPOTENCY_KEY_REQUIRED"


def test_idempotency_key_longer_than_255_is_refused(api):
    r = api.post("/v1/merchant/api-keys", {}, idem="k" * 256)
    assert r.status_code == 400 and err(r) == "BAD_REQUEST"
    assert api.post("/v1/merchant/api-keys", {}, idem="k" * 255).status_code == 201


def _raw_post(api, data, content_type="application/json", idem="raw-1"):
    return api.client.post("/v1/merchant/api-keys", data=data, content_type=content_type,
                           headers={"Authorization": f"Bearer {api.token}", "X-Idempotency-Key": idem})


@pytest.mark.parametrize("data,status,code", [
    (b"{not json", 400, "BAD_REQUEST"),
    (b"[1,2]", 400, "BAD_REQUEST"),
    (b'"text"', 400, "BAD_REQUEST"),
    (b"\xff\xfe", 400, "BAD_REQUEST"),
    (b'{"nope": 1}', 422, "VALIDATION_ERROR"),
    (b'{"scopes": ["root"]}', 422, "VALIDATION_ERROR"),
    (b'{"scopes": "payments:read"}', 422, "VALIDATION_ERROR"),
    (b'{"scopes": ["payments:read"], "scopes": ["api_keys:manage"]}', 400, "BAD_REQUEST"),
    (b'{"metadata": {"a": 1, "a": 2}}', 400, "BAD_REQUEST"),
])
def test_malformed_bodies(api, data, status, code):
    r = _raw_post(api, data)
    assert r.status_code == status and err(r) == code
    assert _count_keys(api) == 1, "a refused request changes nothing"


def test_non_json_content_type_is_415(api):
    r = _raw_post(api, b"scopes=x", content_type="application/x-www-form-urlencoded")
    assert r.status_code == 415 and err(r) == "UNSUPPORTED_MEDIA_TYPE"


def test_ten_megabyte_body_is_refused(api):
    r = _raw_post(api, b'{"name": "' + b"x" * (10 * 1024 * 1024) + b'"}')
    assert r.status_code == 400 and err(r) == "BAD_REQUEST"
    assert _count_keys(api) == 1


def test_validation_error_names_the_field(api):
    r = api.post("/v1/merchant/api-keys", {"name": ""})
    assert r.status_code == 422
    assert r.get_json()["error"]["details"]["field"] == "name"


def test_refused_validation_is_not_stored_so_the_key_can_be_reused(api):
    bad = api.post("/v1/merchant/api-keys", {"scopes": ["root"]}, idem="fix-me")
    assert bad.status_code == 422
    good = api.post("/v1/merchant/api-keys", {"scopes": ["payments:read"]}, idem="fix-me")
    assert good.status_code == 201


def test_times_are_utc_with_z(api):
    data = api.get("/v1/merchant").get_json()["data"]
    assert data["created_at"].endswith("Z")


def _count_keys(api) -> int:
    return len(api.get("/v1/merchant/api-keys", limit=100).get_json()["data"]["items"])


def test_no_stack_trace_in_500(app, client):
    @app.get("/v1/_boom")
    def boom():
        raise RuntimeError("secret internals")

    r = client.get("/v1/_boom")
    assert r.status_code == 500 and err(r) == "INTERNAL_ERROR"
    assert "secret internals" not in r.get_data(as_text=True)
    assert "Traceback" not in json.dumps(r.get_json())


def test_every_log_line_of_a_request_carries_its_trace_id(app, client, caplog):
    import logging

    @app.get("/v1/_log")
    def log_something():
        logging.getLogger("soxara.test").warning("inside the request")
        return {"ok": True}

    with caplog.at_level(logging.INFO):
        r = client.get("/v1/_log")
    lines = [rec for rec in caplog.records if rec.getMessage() == "inside the request"]
    assert lines and lines[0].trace_id == r.headers["X-Trace-Id"]
