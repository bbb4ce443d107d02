"""API keys through core: a key mints only keys within its own scopes and mode, whoever
calls (the API, the CLI, a future console)."""

from __future__ import annotations

import pytest

from core.errors import Forbidden, Unauthorized
from core.merchants import keys, merchants


def _merchant_with_key(runtime, scopes, live=False):
    with runtime.uow() as uow:
        m = merchants.create_merchant(uow, "Shop")
        k = keys.mint_key(uow, runtime.secret_key, m.id, livemode=live, scopes=scopes)
        uow.commit()
    return m.id, k.key.id


def test_minting_by_a_key_never_widens_it(runtime):
    _, key_id = _merchant_with_key(runtime, ["api_keys:manage", "payments:read"])
    with runtime.uow() as uow, pytest.raises(Forbidden) as e:
        keys.mint_key_by(uow, runtime.secret_key, key_id,
                         scopes=["payments:read", "transfers:create", "refunds:create"])
    assert e.value.details == {"missing_scopes": ["transfers:create", "refunds:create"]}
    with runtime.uow() as uow:
        minted = keys.mint_key_by(uow, runtime.secret_key, key_id, scopes=["payments:read"])
        assert minted.key.scope_list == ["payments:read"]


@pytest.mark.parametrize("live", [False, True])
def test_a_key_mints_in_its_own_mode_for_its_own_merchant(runtime, live):
    mid, key_id = _merchant_with_key(runtime, ["api_keys:manage"], live=live)
    with runtime.uow() as uow:
        minted = keys.mint_key_by(uow, runtime.secret_key, key_id, scopes=["api_keys:manage"])
        assert (minted.key.merchant_id, minted.key.livemode) == (mid, live)
        assert minted.secret.startswith("sxm_live_" if live else "sxm_test_")


def test_a_revoked_key_or_one_without_api_keys_manage_mints_nothing(runtime):
    mid, key_id = _merchant_with_key(runtime, ["payments:read"])
    with runtime.uow() as uow, pytest.raises(Forbidden) as e:
        keys.mint_key_by(uow, runtime.secret_key, key_id, scopes=["payments:read"])
    assert "api_keys:manage" in e.value.message
    _, manager = _merchant_with_key(runtime, ["api_keys:manage"])
    with runtime.uow() as uow:
        k = uow.session.get(keys.ApiKey, manager)
        keys.revoke_key(uow, k.merchant_id, False, manager)
        uow.commit()
    with runtime.uow() as uow, pytest.raises(Unauthorized):
        keys.mint_key_by(uow, runtime.secret_key, manager, scopes=["api_keys:manage"])
