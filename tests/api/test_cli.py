"""The `soxara` command as an operator runs it, against the suite's database."""

from __future__ import annotations

import json

import pytest

from api import cli
from tests.conftest import Api


@pytest.fixture
def operator_env(runtime, monkeypatch):
    s = runtime.settings
    monkeypatch.setenv("SOXARA_ENV", s.env)
    monkeypatch.setenv("SOXARA_DATABASE_URL", s.database_url)
    monkeypatch.setenv("SOXARA_SECRET_KEY", s.secret_key)
    monkeypatch.delenv("SOXARA_REDIS_URL", raising=False)


def run(capsys, *argv) -> dict:
    assert cli.main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_a_first_key_holds_the_defaults_and_the_named_scopes_so_it_can_mint_a_till_key(
        operator_env, client, capsys):
    """The README's walk and contract-smoke: a merchant made with `--scopes merchant:read
    api_keys:manage` mints a key with the default scopes. A key mints only within its own
    scopes, so the first key must hold the defaults as well as what was named."""
    out = run(capsys, "merchant", "create", "--name", "Kpelle Crafts", "--scopes", "merchant:read", "api_keys:manage")
    key = out["test_key"]
    assert key["scopes"] == ["payments:create", "payments:read", "merchant:read", "api_keys:manage"]
    r = Api(client, key["key"]).post("/v1/merchant/api-keys", {"name": "till 2"})
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["data"]["scopes"] == ["payments:create", "payments:read"]


def test_without_scopes_a_first_key_holds_the_defaults(operator_env, capsys):
    out = run(capsys, "merchant", "create", "--name", "Kpelle Crafts", "--live")
    assert out["test_key"]["scopes"] == out["live_key"]["scopes"] == ["payments:create", "payments:read"]
    assert out["live_key"]["key"].startswith("sxm_live_")


def test_serve_prints_its_address_as_it_starts(operator_env, capsys, monkeypatch):
    started = []
    monkeypatch.setattr(cli.os, "execv", lambda path, argv: started.append(argv))
    assert cli.main(["serve", "--port", "5055"]) == 0
    said = capsys.readouterr()
    assert "http://127.0.0.1:5055 " in said.err and "http://127.0.0.1:5055/dev/whatsapp" in said.err
    assert "127.0.0.1:5055" in started[0]
