"""Settings, read once from `SOXARA_*` environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

DEV_SECRET_KEY = "dev-secret-key-not-for-production"
DEV_TWILIO_AUTH_TOKEN = "dev-twilio-auth-token"


class ConfigError(RuntimeError):
    """The configuration is unsafe or inconsistent; the process must not start."""


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    database_url: str = "sqlite:///soxara.db"
    redis_url: str | None = None
    secret_key: str = DEV_SECRET_KEY
    public_url: str = "http://127.0.0.1:5000"
    twilio_auth_token: str = DEV_TWILIO_AUTH_TOKEN
    twilio_account_sid: str | None = None
    whatsapp_number: str = "+231770000000"
    claim_window_hours: int = 168
    # How many reverse proxies sit in front of the app and set X-Forwarded-For: the
    # per-IP OTP limit must see the client's address, not the proxy's.
    trusted_proxies: int = 0
    # How jobs run when there is no Redis: "thread" (a background thread, the embedded
    # default) or "eager" (right after the transaction commits, in the caller's thread;
    # tests use it so that what a request caused is visible when the request returns).
    inprocess_jobs: str = "thread"
    # The billers `GET /v1/billers` lists, as JSON (core/billers); unset: LEC and LWSC.
    billers: str | None = None
    # Each payment method's fee in basis points, as JSON (core/payments/fees.py); unset: the defaults.
    payment_fees: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def sandbox(self) -> bool:
        """Sandbox behaviour (dev pages, sandbox-only shortcuts) is on everywhere but production."""
        return not self.production

    @property
    def user_mode_live(self) -> bool:
        """Whether people acting for themselves (bot, user tokens) move live or test money.

        A sandbox deployment has only sandbox rails, so its people hold test money; in
        production people hold live money, and test money exists only for merchants'
        test keys and the sandbox buyers they pay with.
        """
        return self.production

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def with_overrides(self, **kw) -> Settings:
        return replace(self, **kw)

    @classmethod
    def from_env(cls, environ: dict | None = None) -> Settings:
        e = os.environ if environ is None else environ
        s = cls(
            env=e.get("SOXARA_ENV", "development"),
            database_url=e.get("SOXARA_DATABASE_URL", "sqlite:///soxara.db"),
            redis_url=e.get("SOXARA_REDIS_URL") or None,
            secret_key=e.get("SOXARA_SECRET_KEY", DEV_SECRET_KEY),
            public_url=e.get("SOXARA_PUBLIC_URL", "http://127.0.0.1:5000").rstrip("/"),
            twilio_auth_token=e.get("SOXARA_TWILIO_AUTH_TOKEN", DEV_TWILIO_AUTH_TOKEN),
            twilio_account_sid=e.get("SOXARA_TWILIO_ACCOUNT_SID") or None,
            whatsapp_number=e.get("SOXARA_WHATSAPP_NUMBER", "+231770000000"),
            claim_window_hours=int(e.get("SOXARA_CLAIM_WINDOW_HOURS", "168")),
            trusted_proxies=int(e.get("SOXARA_TRUSTED_PROXIES", "0")),
            inprocess_jobs=e.get("SOXARA_INPROCESS_JOBS", "thread"),
            billers=e.get("SOXARA_BILLERS") or None,
            payment_fees=e.get("SOXARA_PAYMENT_FEES") or None,
        )
        s.check()
        return s

    def check(self) -> None:
        if self.env not in ("development", "test", "production"):
            raise ConfigError(f"SOXARA_ENV must be development, test or production, not {self.env!r}")
        if self.production:
            if self.secret_key == DEV_SECRET_KEY:
                raise ConfigError("production refuses the default SOXARA_SECRET_KEY")
            if self.twilio_auth_token == DEV_TWILIO_AUTH_TOKEN:
                raise ConfigError("production refuses the default SOXARA_TWILIO_AUTH_TOKEN")
            if self.is_sqlite:
                raise ConfigError("production refuses SQLite: set SOXARA_DATABASE_URL=postgresql://…")
            if not self.redis_url:
                raise ConfigError("production needs SOXARA_REDIS_URL for its job queue")
            if not self.twilio_account_sid:
                # The sandbox transport only stores messages: login codes would never arrive.
                raise ConfigError("production needs SOXARA_TWILIO_ACCOUNT_SID to send WhatsApp messages")
        if self.inprocess_jobs not in ("thread", "eager"):
            raise ConfigError("SOXARA_INPROCESS_JOBS must be thread or eager")
        from core.billers import catalog

        catalog(self)  # a malformed SOXARA_BILLERS refuses to start
        from core.payments import fees

        try:
            fees.schedule(self)
        except ValueError as e:  # json.JSONDecodeError is one
            raise ConfigError(str(e)) from None
