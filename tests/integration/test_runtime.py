"""One function builds the runtime from the settings (workers/runtime.py), for the app, the
CLI and the worker alike, and the runtime holds each outside service it chose."""

from __future__ import annotations

import pytest

from core.messaging.transports import SandboxTransport
from core.runtime import Runtime
from tests.conftest import make_settings
from workers import runtime as builder


@pytest.fixture
def settings_here(tmp_path):
    return make_settings(f"sqlite:///{tmp_path}/built.db")


def test_the_settings_choose_the_whatsapp_transport(settings_here):
    from workers.twilio_transport import TwilioTransport

    sandbox = builder.build_runtime(settings_here, jobs=None)
    twilio = builder.build_runtime(settings_here.with_overrides(twilio_account_sid="AC" + "0" * 32), jobs=None)
    try:
        assert isinstance(sandbox.transport, SandboxTransport)
        assert isinstance(twilio.transport, TwilioTransport), "no network at building, only a client"
        assert twilio.transport.from_number == settings_here.whatsapp_number
    finally:
        sandbox.dispose()
        twilio.dispose()


def test_a_runtime_made_without_the_builder_has_no_outside_service(settings_here):
    """Asked for a service it was not given, it says so, rather than sending through a
    sandbox that a production process never meant to use."""
    rt = Runtime(settings_here)
    try:
        for service in ("transport", "rails", "billers", "webhooks", "jobs"):
            with pytest.raises(RuntimeError, match="this runtime has no"):
                getattr(rt, service)
    finally:
        rt.dispose()


def test_the_app_the_cli_and_the_worker_all_build_their_runtime_with_the_builder(settings_here, monkeypatch):
    """Guards a process that picks its services its own way (the worker's deliveries chose
    their transport per call, apart from the runtime the app and the CLI built)."""
    from api.app import create_app
    from api.cli import base as cli
    from workers import context

    chosen = SandboxTransport()
    monkeypatch.setattr(builder, "transport_for", lambda settings: chosen)
    monkeypatch.setattr("core.config.Settings.from_env", classmethod(lambda cls, environ=None: settings_here))
    built = {
        "app": create_app(settings_here).extensions["soxara"],
        "cli": cli.runtime(),
        "worker": context.runtime_for(None),
    }
    try:
        assert {name: rt.transport is chosen for name, rt in built.items()} == dict.fromkeys(built, True)
        assert built["cli"].jobs.mode == "eager", "a command runs what it causes before it exits"
    finally:
        context.set_process_runtime(None)
        for rt in built.values():
            rt.dispose()


def test_message_deliveries_go_through_the_runtimes_transport(runtime):
    from core.messaging import outbox

    class Counting(SandboxTransport):
        sent = 0

        def send(self, to_phone, body):
            Counting.sent += 1
            return super().send(to_phone, body)

    runtime.transport = Counting()
    with runtime.uow() as uow:
        outbox.send_whatsapp(uow, runtime, "+231881234567", "hello")
        uow.commit()
    assert Counting.sent == 1


def test_the_runtime_holds_the_billers_of_the_settings(settings_here):
    import json

    from core.billers import DEFAULT_BILLERS
    from core.billers.sandbox import SandboxTimm

    lec_only = json.dumps([DEFAULT_BILLERS[0].as_dict()])
    rt = builder.build_runtime(settings_here.with_overrides(billers=lec_only), jobs=None)
    try:
        assert [b.code for b in rt.billers.catalog] == ["LEC"]
        assert isinstance(rt.billers.rail(livemode=False), SandboxTimm)
    finally:
        rt.dispose()


def test_the_runtime_sends_webhooks_over_http_and_a_test_may_swap_in_a_recorder(settings_here):
    from core.webhooks.sender import RecordingSender
    from workers.webhook_sender import HttpWebhookSender

    rt = builder.build_runtime(settings_here, jobs=None)
    try:
        assert isinstance(rt.webhooks, HttpWebhookSender)
        rt.webhooks = RecordingSender()
        assert rt.webhooks.send("https://example.test/h", {}, b"{}", 10).ok
    finally:
        rt.dispose()
