"""The one app factory: the `/v1` API, the WhatsApp webhook and, in sandbox, the dev pages."""

from __future__ import annotations

import importlib

from flask import Flask, g

from api import errors
from api.blueprint import CONVERTERS, v1
from core.config import Settings
from core.runtime import Runtime
from core.tracing import install_logging, new_trace_id

ROUTE_MODULES = [
    "api.routes.merchant",
    "api.routes.auth",
    "api.routes.wallets",
    "api.routes.transfers",
    "api.routes.deposits",
    "api.routes.bills",
    "api.routes.payments",
    "api.routes.refunds",
    "api.routes.webhook_endpoints",
    "api.routes.events",
]


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Flask:
    settings = settings or (runtime.settings if runtime else Settings.from_env())
    settings.check()
    install_logging()
    app = Flask("soxara")
    if settings.trusted_proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    app.config["SOXARA_SETTINGS"] = settings

    if runtime is None:
        from workers.runtime import build_runtime

        runtime = build_runtime(settings)
        start = getattr(runtime.jobs, "start", None)
        if start:
            start()
    app.extensions["soxara"] = runtime

    @app.before_request
    def _trace():
        g.trace_id = new_trace_id()

    @app.after_request
    def _trace_header(resp):
        resp.headers.setdefault("X-Trace-Id", g.get("trace_id", new_trace_id()))
        return resp

    for mod in ROUTE_MODULES:
        importlib.import_module(mod)
    app.url_map.converters.update(CONVERTERS)
    app.register_blueprint(v1)
    from bot.webhook import whatsapp

    app.register_blueprint(whatsapp)
    from api.pay import pay

    app.register_blueprint(pay)
    if settings.sandbox:
        # The chat page and the outbox exist only in sandbox: absent (404) in production.
        from bot.dev import dev

        app.register_blueprint(dev)
    errors.install(app)

    from api.openapi import install as install_openapi

    install_openapi(app)

    @app.get("/healthz")
    def healthz():
        """Each dependency's state. 200 while the database answers, "degraded" when the job
        queue does not: money still moves and the sweeps catch up, so a load balancer must
        not take every web process out because Redis is down. 503 when the database does
        not answer: nothing can be served."""
        from api.envelope import error_body, respond, success_body
        from core.db import RETRY_AFTER

        checks = runtime.health()
        if checks["database"] != "ok":
            return respond(503, error_body("SERVICE_UNAVAILABLE", "the database is unavailable",
                                           {"status": "down", "checks": checks}),
                           {"Retry-After": str(RETRY_AFTER["down"])})
        status = "ok" if all(v == "ok" for v in checks.values()) else "degraded"
        return respond(200, success_body({"status": status, "checks": checks}))

    return app
