"""The `soxara` command as an operator runs it, against the suite's database."""

from __future__ import annotations

import json

import pytest

from api import cli
from api.cli import serve
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


# CONTRACT.md section 5, word for word: the command, then the options it names.
CONTRACT_COMMANDS = [("db", "upgrade"), ("serve",), ("worker",), ("merchant", "create"),
                     ("sandbox", "buyer"), ("staff", "add"), ("ledger", "check"),
                     ("ledger", "adjust", "--wallet", "--amount", "--reason"), ("demo",)]


def _help(capsys, *words) -> str:
    with pytest.raises(SystemExit) as e:
        cli.main([*words, "--help"])
    assert e.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("command", CONTRACT_COMMANDS, ids=lambda c: " ".join(w for w in c if w[0] != "-"))
def test_help_lists_every_command_the_contract_names(capsys, command):
    words = [w for w in command if not w.startswith("-")]
    listed = _help(capsys)
    assert f"    {words[0]} " in listed or f"    {words[0]}\n" in listed, listed
    if len(words) > 1:
        assert f"    {words[1]} " in _help(capsys, words[0])
    options = [w for w in command if w.startswith("-")]
    if options:
        own = _help(capsys, *words)
        assert all(o in own for o in options), own


def test_staff_add_prints_the_member_and_takes_a_local_phone(operator_env, capsys):
    out = run(capsys, "staff", "add", "--phone", "0881 000 111", "--role", "agent")
    member = out["staff_member"]
    assert member["id"].startswith("stf_") and member["object"] == "staff_member"
    assert (member["phone_number"], member["role"]) == ("+231881000111", "agent")
    assert member["created_at"].endswith("Z")
    assert (out["outcome"], out["previous_role"]) == ("created", None)


def test_staff_add_again_is_unchanged_and_another_role_changes_it(operator_env, capsys):
    first = run(capsys, "staff", "add", "--phone", "+231881000111", "--role", "agent")
    again = run(capsys, "staff", "add", "--phone", "0881000111", "--role", "agent")
    assert again["staff_member"] == first["staff_member"] and again["outcome"] == "unchanged"
    lead = run(capsys, "staff", "add", "--phone", "0881000111", "--role", "lead")
    assert (lead["outcome"], lead["previous_role"]) == ("role_changed", "agent")
    assert lead["staff_member"]["id"] == first["staff_member"]["id"]
    assert lead["staff_member"]["role"] == "lead"


def test_staff_add_refuses_a_bad_phone_with_a_sentence(operator_env, capsys):
    assert cli.main(["staff", "add", "--phone", "12", "--role", "agent"]) == 2
    err = capsys.readouterr()
    assert err.out == "" and err.err == "soxara: '12' is not a valid phone number\n"


@pytest.mark.parametrize("argv", [["--phone", "0881000111"], ["--phone", "0881000111", "--role", "admin"]])
def test_staff_add_needs_a_role_of_agent_or_lead(operator_env, capsys, argv):
    with pytest.raises(SystemExit) as e:
        cli.main(["staff", "add", *argv])
    assert e.value.code == 2
    assert "--role" in capsys.readouterr().err


def test_serve_prints_its_address_as_it_starts(operator_env, capsys, monkeypatch):
    started = []
    monkeypatch.setattr(serve.os, "execv", lambda path, argv: started.append(argv))
    assert cli.main(["serve", "--port", "5055"]) == 0
    said = capsys.readouterr()
    assert "http://127.0.0.1:5055 " in said.err and "http://127.0.0.1:5055/dev/whatsapp" in said.err
    assert "127.0.0.1:5055" in started[0]
