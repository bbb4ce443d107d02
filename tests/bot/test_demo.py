"""`soxara demo`: a demo merchant, two funded sandbox users, and where to chat."""

from __future__ import annotations

import json

from bot.demo import DEMO_USERS, seed
from tests.bot.conftest import balance


def test_demo_seeds_a_merchant_and_two_funded_users_who_can_chat(runtime, phone):
    out = seed(runtime)
    assert out["merchant"]["test_key"]["key"].startswith("sxm_test_")
    assert [u["phone_number"] for u in out["users"]] == [p for p, _ in DEMO_USERS]
    assert all(u["wallet"]["balance"] == 1000_00 for u in out["users"])
    assert out["chat"]["page"].endswith("/dev/whatsapp")
    assert out["users"][0]["messages"].endswith("/dev/messages?to=%2B231886100001")

    musu = phone(DEMO_USERS[0][0])
    musu.login()
    assert "US$1,000.00" in musu.says("BAL")
    musu.says("SEND 5 USD 0886100002")
    musu.says("1")
    assert "(Kollie)" in musu.says("4821")
    assert balance(runtime, DEMO_USERS[1][0]) == 1005_00


def test_running_it_again_tops_up_and_keeps_one_merchant(runtime):
    first = seed(runtime)
    second = seed(runtime)
    assert first["merchant"]["id"] == second["merchant"]["id"]
    assert first["merchant"]["test_key"]["key"] != second["merchant"]["test_key"]["key"]
    assert [u["wallet"]["balance"] for u in second["users"]] == [1000_00, 1000_00]


def test_the_cli_prints_json(tmp_path, monkeypatch, capsys):
    from api.cli import main

    monkeypatch.setenv("SOXARA_DATABASE_URL", f"sqlite:///{tmp_path}/demo.db")
    monkeypatch.delenv("SOXARA_REDIS_URL", raising=False)
    monkeypatch.setenv("SOXARA_ENV", "development")
    assert main(["demo"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"merchant", "users", "chat"} <= set(out)


def test_the_cli_refuses_in_production(monkeypatch, capsys):
    from api.cli import main

    monkeypatch.setenv("SOXARA_ENV", "production")
    monkeypatch.setenv("SOXARA_SECRET_KEY", "s" * 40)
    monkeypatch.setenv("SOXARA_TWILIO_AUTH_TOKEN", "t" * 32)
    monkeypatch.setenv("SOXARA_DATABASE_URL", "postgresql://postgres@127.0.0.1:1/never")
    monkeypatch.setenv("SOXARA_REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("SOXARA_TWILIO_ACCOUNT_SID", "AC" + "0" * 32)
    assert main(["demo"]) == 2
    assert "production" in capsys.readouterr().err
