"""Revoking an API key while requests use it, on PostgreSQL (READ COMMITTED lets two
requests interleave between a read and a write): a key is revoked once, by one request,
and a mint by the key never lands after its revocation."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from core.merchants import keys
from tests.conftest import Api, at_once, create_merchant

REVOKERS = 8


@pytest.fixture
def pg_app(pg_runtime):
    from api.app import create_app

    return create_app(runtime=pg_runtime)


def _only_key_id(rt, merchant_id) -> str:
    with rt.uow() as uow:
        (key_id,) = uow.session.scalars(select(keys.ApiKey.id).where(
            keys.ApiKey.merchant_id == merchant_id))
        return key_id


@pytest.mark.postgres
def test_concurrent_revocations_of_one_key_revoke_it_once(pg_app, pg_runtime):
    mid, manager = create_merchant(pg_runtime, scopes=["api_keys:manage"])
    for _ in range(3):
        with pg_runtime.uow() as uow:
            target = keys.mint_key(uow, pg_runtime.secret_key, mid, livemode=False,
                                   scopes=["payments:read"]).key.id
            uow.commit()
        path = f"/v1/merchant/api-keys/{target}/revoke"
        answers = at_once(REVOKERS, lambda i, path=path: Api(pg_app.test_client(), manager).post(
            path, idem=uuid.uuid4().hex))
        statuses = sorted(r.status_code for r in answers)
        assert statuses == [200] + [409] * (REVOKERS - 1), statuses
        assert {r.get_json()["error"]["code"] for r in answers if r.status_code == 409} == {"INVALID_STATE"}
        answered = next(r.get_json()["data"]["revoked_at"] for r in answers if r.status_code == 200)
        listed = Api(pg_app.test_client(), manager).get("/v1/merchant/api-keys").get_json()["data"]["items"]
        assert [k["revoked_at"] for k in listed if k["id"] == target] == [answered], \
            "the revocation answered 200 is the one that stands"


@pytest.mark.postgres
def test_a_key_revoked_while_it_mints_leaves_no_key_minted_after_the_revocation(
        pg_app, pg_runtime, monkeypatch):
    """The merchant revokes a key (leaked, say) while a mint by that key is under way, after
    the mint checked the key. Either the revocation waits for the mint (the new key exists
    before the revocation, and is listed for the merchant to review), or the mint sees the
    revocation and is refused: never a new key minted by a key already revoked."""
    mid, key = create_merchant(pg_runtime, scopes=["api_keys:manage", "payments:read"])
    key_id = _only_key_id(pg_runtime, mid)
    revocation: list[str] = []
    real_mint_key = keys.mint_key

    def revoked_meanwhile(*args, **kw):  # mint_key_by has read the minting key, and goes on to mint
        with pg_runtime.uow() as other:
            # Waiting for the mint would wait for this very thread: give up after a moment.
            other.session.execute(text("SET LOCAL lock_timeout = '300ms'"))
            try:
                keys.revoke_key(other, mid, False, key_id)
                other.commit()
                revocation.append("committed while the mint ran")
            except OperationalError:
                revocation.append("waited for the mint")
        return real_mint_key(*args, **kw)

    monkeypatch.setattr(keys, "mint_key", revoked_meanwhile)
    r = Api(pg_app.test_client(), key).post("/v1/merchant/api-keys", {"scopes": ["payments:read"]})
    monkeypatch.undo()
    if revocation == ["committed while the mint ran"]:
        assert r.status_code == 401 and r.get_json()["error"]["code"] == "UNAUTHORIZED", r.get_json()
    else:
        assert revocation == ["waited for the mint"] and r.status_code == 201, (revocation, r.get_json())
