"""Merchant profile and API keys: mint, list, revoke, modes."""

from __future__ import annotations

from tests.conftest import Api, create_merchant


def test_profile_shows_calling_key_scopes_and_mode(api, merchant):
    d = api.get("/v1/merchant").get_json()["data"]
    assert d["id"] == merchant[0] and d["livemode"] is False
    assert "api_keys:manage" in d["scopes"] and d["settlement_schedule"]


def test_mint_shows_full_key_once_and_list_never(api):
    r = api.post("/v1/merchant/api-keys", {"name": "pos"})
    assert r.status_code == 201
    minted = r.get_json()["data"]
    assert minted["key"].startswith("sxm_test_") and len(minted["key"]) == 49
    assert minted["key"].startswith(minted["prefix"]) and len(minted["prefix"]) == 17
    assert minted["scopes"] == ["payments:create", "payments:read"], "the contract's default"
    listed = api.get("/v1/merchant/api-keys").get_json()["data"]
    assert minted["id"] in [k["id"] for k in listed["items"]]
    assert minted["key"] not in str(listed)
    # and the new key works
    assert Api(api.client, minted["key"]).get("/v1/merchant").status_code == 403  # lacks merchant:read


def test_key_is_stored_only_as_a_hash(api, runtime):
    import sqlalchemy as sa

    full = api.post("/v1/merchant/api-keys", {}).get_json()["data"]["key"]
    with runtime.engine.connect() as c:
        for table in ("api_keys", "idempotency_keys"):
            for row in c.execute(sa.text(f"select * from {table}")):
                assert full[17:] not in str(tuple(row))


def test_revoked_key_fails_on_the_very_next_request(api):
    minted = api.post("/v1/merchant/api-keys", {"scopes": ["merchant:read"]}).get_json()["data"]
    other = Api(api.client, minted["key"])
    assert other.get("/v1/merchant").status_code == 200
    r = api.post(f"/v1/merchant/api-keys/{minted['id']}/revoke")
    assert r.status_code == 200 and r.get_json()["data"]["status"] == "revoked"
    assert other.get("/v1/merchant").status_code == 401
    again = api.post(f"/v1/merchant/api-keys/{minted['id']}/revoke")
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "INVALID_STATE"


def test_other_merchants_and_other_modes_keys_are_404(api, runtime, client):
    _, foreign = create_merchant(runtime, "Other")
    foreign_id = Api(client, foreign).get("/v1/merchant/api-keys").get_json()["data"]["items"][0]["id"]
    r = api.post(f"/v1/merchant/api-keys/{foreign_id}/revoke")
    assert r.status_code == 404
    mid = api.get("/v1/merchant").get_json()["data"]["id"]
    from core.merchants import keys

    with runtime.uow() as uow:
        live = keys.mint_key(uow, runtime.secret_key, mid, livemode=True, scopes=["api_keys:manage"])
        uow.commit()
    assert api.post(f"/v1/merchant/api-keys/{live.key.id}/revoke").status_code == 404
    live_items = Api(client, live.secret).get("/v1/merchant/api-keys").get_json()["data"]["items"]
    assert [k["livemode"] for k in live_items] == [True]


def test_keyset_pages(api):
    for i in range(5):
        api.post("/v1/merchant/api-keys", {"name": f"k{i}"})
    seen, cursor = [], None
    while True:
        params = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        d = api.get("/v1/merchant/api-keys", **params).get_json()["data"]
        seen += [k["id"] for k in d["items"]]
        if not d["has_more"]:
            assert d["next_cursor"] is None
            break
        cursor = d["next_cursor"]
    assert len(seen) == 6 and len(set(seen)) == 6 and seen == sorted(seen, reverse=True)


def test_bad_list_params(api):
    for params in ({"limit": 0}, {"limit": 101}, {"limit": "x"}, {"cursor": "!!!"}, {"bogus": 1}):
        r = api.get("/v1/merchant/api-keys", **params)
        assert r.status_code == 422, params


# --- a key mints only what it holds (issue 10, point 2) -----------------------------------


def _keys_of(runtime, merchant_id):
    from sqlalchemy import select

    from core.merchants import keys

    with runtime.uow() as uow:
        return list(uow.session.scalars(select(keys.ApiKey).where(
            keys.ApiKey.merchant_id == merchant_id)))


def test_a_key_mints_no_scope_it_does_not_hold(client, runtime):
    mid, key = create_merchant(runtime, scopes=["api_keys:manage", "payments:read"])
    api = Api(client, key)
    r = api.post("/v1/merchant/api-keys", {"scopes": ["transfers:create", "payments:read", "wallets:read"]})
    assert r.status_code == 403, r.get_json()
    error = r.get_json()["error"]
    assert error["code"] == "FORBIDDEN"
    assert "transfers:create" in error["message"] and "wallets:read" in error["message"]
    assert "payments:read" not in error["message"], "only the scopes it lacks are named"
    assert error["details"] == {"missing_scopes": ["transfers:create", "wallets:read"]}
    # The default (payments:create, payments:read) is no way round it either.
    r = api.post("/v1/merchant/api-keys", {})
    assert r.status_code == 403 and r.get_json()["error"]["details"] == {"missing_scopes": ["payments:create"]}
    assert len(_keys_of(runtime, mid)) == 1, "nothing was minted"
    r = api.post("/v1/merchant/api-keys", {"scopes": ["payments:read", "api_keys:manage"]})
    assert r.status_code == 201 and r.get_json()["data"]["scopes"] == ["payments:read", "api_keys:manage"]


def test_a_refused_mint_is_not_stored_so_its_key_may_be_retried(client, runtime):
    mid, key = create_merchant(runtime, scopes=["api_keys:manage"])
    api = Api(client, key)
    assert api.post("/v1/merchant/api-keys", {"scopes": ["merchant:read"]}, idem="m-1").status_code == 403
    r = api.post("/v1/merchant/api-keys", {"scopes": ["api_keys:manage"]}, idem="m-1")
    assert r.status_code == 201 and "Idempotent-Replayed" not in r.headers


def test_a_replay_gives_a_minted_key_only_to_a_key_that_could_mint_it(client, runtime):
    """The idempotency scope is the merchant and mode: a narrow key sending another key's
    request (same X-Idempotency-Key, same body) must not get the wide key it minted."""
    mid, wide = create_merchant(runtime)
    from core.merchants import keys

    with runtime.uow() as uow:
        narrow = keys.mint_key(uow, runtime.secret_key, mid, livemode=False,
                               scopes=["api_keys:manage"]).secret
        uow.commit()
    body = {"scopes": ["transfers:create"]}
    first = Api(client, wide).post("/v1/merchant/api-keys", body, idem="mint-1")
    assert first.status_code == 201
    minted = first.get_json()["data"]["key"]
    r = Api(client, narrow).post("/v1/merchant/api-keys", body, idem="mint-1")
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "FORBIDDEN"
    assert minted not in r.get_data(as_text=True)
    again = Api(client, wide).post("/v1/merchant/api-keys", body, idem="mint-1")
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"


def test_a_key_mints_only_in_its_own_mode(client, runtime):
    mid, test_key = create_merchant(runtime, scopes=["api_keys:manage"])
    r = Api(client, test_key).post("/v1/merchant/api-keys", {"scopes": ["api_keys:manage"], "livemode": True})
    assert r.status_code == 422 and r.get_json()["error"]["details"] == {"field": "livemode"}
    r = Api(client, test_key).post("/v1/merchant/api-keys", {"scopes": ["api_keys:manage"]})
    assert r.get_json()["data"]["livemode"] is False and r.get_json()["data"]["key"].startswith("sxm_test_")
    _, live_key = create_merchant(runtime, "Live Shop", scopes=["api_keys:manage"], live=True)
    r = Api(client, live_key).post("/v1/merchant/api-keys", {"scopes": ["api_keys:manage"]})
    assert r.get_json()["data"]["livemode"] is True and r.get_json()["data"]["key"].startswith("sxm_live_")
