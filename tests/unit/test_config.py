"""Production refuses to start on anything that only suits a laptop."""

import pytest

from core.config import ConfigError, Settings

PROD = {
    "SOXARA_ENV": "production", "SOXARA_SECRET_KEY": "s" * 40, "SOXARA_TWILIO_AUTH_TOKEN": "t" * 32,
    "SOXARA_DATABASE_URL": "postgresql://db/soxara", "SOXARA_REDIS_URL": "redis://r:6379/0",
    "SOXARA_TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
}


def test_defaults_are_the_embedded_sandbox():
    s = Settings.from_env({})
    assert s.sandbox and s.is_sqlite and s.redis_url is None and not s.user_mode_live
    assert s.claim_window_hours == 168 and s.whatsapp_number == "+231770000000"


def test_a_complete_production_config_starts():
    s = Settings.from_env(PROD)
    assert s.production and not s.sandbox and s.user_mode_live


@pytest.mark.parametrize("change", [
    {"SOXARA_SECRET_KEY": None}, {"SOXARA_TWILIO_AUTH_TOKEN": None}, {"SOXARA_DATABASE_URL": None},
    {"SOXARA_DATABASE_URL": "sqlite:///x.db"}, {"SOXARA_REDIS_URL": None},
    {"SOXARA_TWILIO_ACCOUNT_SID": None}, {"SOXARA_ENV": "staging"},
])
def test_production_refuses(change):
    env = dict(PROD)
    for k, v in change.items():
        if v is None:
            env.pop(k)
        else:
            env[k] = v
    with pytest.raises(ConfigError):
        Settings.from_env(env)


def test_trusted_proxies_make_the_client_address_visible():
    from api.app import create_app

    s = Settings(env="test", database_url="sqlite://", inprocess_jobs="eager", trusted_proxies=1)
    app = create_app(s)
    seen = {}

    @app.get("/_ip")
    def ip():
        from flask import request

        seen["ip"] = request.remote_addr
        return {}

    app.test_client().get("/_ip", headers={"X-Forwarded-For": "41.57.1.2"},
                          environ_base={"REMOTE_ADDR": "10.0.0.1"})
    assert seen["ip"] == "41.57.1.2"


# --- which rails carry live money (issue 10, point 3) ---------------------------------------


def test_production_without_real_credentials_has_no_live_rail():
    from core.rails import rails_for

    rails = rails_for(Settings.from_env(PROD))
    assert rails.live_rails() == {"mtn_momo": None, "orange_money": None, "card": None}
    for method in ("mtn_momo", "orange_money"):
        assert not rails.carries(method, livemode=True)
        assert rails.carries(method, livemode=False), "test mode keeps the sandbox"


def test_development_lets_live_mode_use_the_sandbox_rails():
    from core.rails import rails_for

    rails = rails_for(Settings.from_env({}))
    assert rails.live_rails() == {"mtn_momo": "sandbox", "orange_money": "sandbox", "card": "sandbox"}
    assert rails.carries("mtn_momo", livemode=True)
