"""The sandbox chat page in a real browser: log in and check a balance (headless Chromium)."""

from __future__ import annotations

import os
import re
import shutil
import threading

import pytest

from tests.bot.conftest import PIN, fund

pytestmark = pytest.mark.browser

A = "+231881234567"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


def _chromium() -> str:
    path = os.environ.get("SOXARA_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(path):
        from tests.conftest import _absent

        _absent("Chromium", f"no browser at {path}")
    return path


@pytest.fixture
def live_server(app):
    from werkzeug.serving import make_server

    srv = make_server("127.0.0.1", 0, app, threaded=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()
    t.join(5)


def test_log_in_and_check_a_balance_on_the_chat_page(live_server, runtime):
    from playwright.sync_api import sync_playwright

    fund(runtime, A, 42_50)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(live_server + "/dev/whatsapp")
            page.fill("#phone", A)
            page.fill("#name", "Musu")
            page.click("#use")

            def say(text: str) -> None:
                page.fill("#text", text)
                page.press("#text", "Enter")

            def bot_says(text: str):
                loc = page.locator(".msg.out", has_text=text).last
                loc.wait_for(timeout=15_000)
                return loc

            say("HI")
            code_msg = bot_says("Your Soxara code is").inner_text()
            code = re.search(r"\b(\d{6})\b", code_msg).group(1)
            bot_says("reply with the 6-digit code")
            say(code)
            bot_says("Choose a 4–6 digit PIN")
            say(PIN)
            bot_says("same PIN again")
            say(PIN)
            bot_says("Your PIN is set")
            say("BAL")
            balance = bot_says("Your balance").inner_text()
            assert "US$42.50" in balance and "L$0.00" in balance
            # What the person typed shows on their side of the chat.
            assert page.locator(".msg.in", has_text="BAL").count() == 1
        finally:
            browser.close()
