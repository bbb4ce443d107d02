"""The sandbox chat page in a real browser (headless Chromium): log in and check a balance;
a local number; switching phones; one error, not one a second; a phone-sized screen; a
clickable claim link.

Screenshots of the page go to $SOXARA_SCREENSHOTS when it is set (docs/screenshots holds
the ones docs/bot.md shows: `SOXARA_SCREENSHOTS=docs/screenshots pytest tests/bot/test_browser.py`)."""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from pathlib import Path

import pytest

from bot.demo import DEMO_USERS
from tests.bot.conftest import PIN, Phone, fund

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


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=_chromium(), headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class ChatPage:
    """The page, driven as a person would: type a phone, say something, read the bubbles."""

    def __init__(self, page, base: str):
        self.page, self.base = page, base

    def open(self) -> ChatPage:
        self.page.goto(self.base + "/dev/whatsapp")
        return self

    def use(self, number: str) -> None:
        self.page.fill("#phone", number)
        self.page.click("#use")

    def say(self, text: str) -> None:
        self.page.fill("#text", text)
        self.page.press("#text", "Enter")

    def bot_says(self, text: str):
        loc = self.page.locator(".msg.out", has_text=text).last
        loc.wait_for(timeout=15_000)
        return loc

    def screenshot(self, name: str) -> None:
        where = os.environ.get("SOXARA_SCREENSHOTS")
        if where:
            Path(where).mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(Path(where) / name))


@pytest.fixture
def chat(browser, live_server):
    def make(**context) -> ChatPage:
        return ChatPage(browser.new_context(**context).new_page(), live_server)
    return make


def _wait_until(c: ChatPage, condition, timeout: float = 15) -> None:
    """Until `condition()` holds (what the server did, which the page cannot wait on)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        c.page.wait_for_timeout(100)


def _log_in(c: ChatPage) -> None:
    c.say("HI")
    found = re.search(r"\b(\d{6})\b", c.bot_says("Your Soxara code is").inner_text())
    assert found, "the code message carries no code"
    code = found.group(1)
    c.bot_says("reply with the 6-digit code")
    c.say(code)
    c.bot_says("Choose a 4–6 digit PIN")
    c.say(PIN)
    c.bot_says("same PIN again")
    c.say(PIN)
    c.bot_says("Your PIN is set")


def test_log_in_and_check_a_balance_on_the_chat_page(chat, runtime):
    fund(runtime, A, 42_50)
    c = chat(viewport={"width": 1000, "height": 760}).open()
    c.use(A)
    c.page.fill("#name", "Musu")
    _log_in(c)
    c.say("BAL")
    balance = c.bot_says("Your balance").inner_text()
    assert "US$42.50" in balance and "L$0.00" in balance
    # What the person typed shows on their side of the chat.
    assert c.page.locator(".msg.in", has_text="BAL").count() == 1
    c.screenshot("chat-desktop.png")


def test_it_opens_on_a_demo_phone_and_says_what_it_is(chat):
    c = chat().open()
    assert c.page.input_value("#phone") == DEMO_USERS[0][0]
    about = c.page.locator("header").inner_text()
    assert "pretend WhatsApp for trying Soxara locally" in about and "nothing is sent" in about


def test_a_local_number_is_taken_as_the_bot_takes_it(chat, client, runtime):
    c = chat().open()
    c.use("0886100077")
    c.say("HI")
    c.bot_says("Welcome to Soxara")
    assert Phone(client, runtime, "+231886100077").outbox(), "the chat is with +231886100077"
    assert c.page.locator(".msg.error, [role=alert]:visible").count() == 0


def test_changing_the_phone_switches_the_conversation(chat, client, runtime):
    """A new number typed in the phone box, and then a message: it goes out as the new
    phone, never as the one before, and the page shows the new phone's chat."""
    from playwright.sync_api import expect

    first, second = Phone(client, runtime, A), Phone(client, runtime, "+231886100078")
    c = chat().open()
    c.use(A)
    c.say("HI")
    c.bot_says("To log in, reply with the 6-digit code")
    before = len(first.outbox())
    c.page.fill("#phone", "0886100078")              # no click: the person just types it
    c.say("HI")
    _wait_until(c, lambda: second.outbox() or len(first.outbox()) > before)
    assert len(first.outbox()) == before, "nothing went out as the previous phone"
    assert second.outbox()[0].startswith("Welcome to Soxara")
    expect(c.page.locator(".msg.in")).to_have_count(1)   # only the new phone's conversation
    expect(c.page.locator(".msg.out")).to_have_count(len(second.outbox()), timeout=10_000)


def test_a_failing_poll_shows_one_error_not_one_a_second(chat):
    """The page polls /dev/messages every second: a poll that keeps failing shows its error
    once, and the error goes when a poll succeeds again."""
    c = chat().open()
    failed: list[str] = []

    def fail(route):
        failed.append(route.request.url)
        route.fulfill(status=503, content_type="application/json",
                      body='{"success": false, "error": {"code": "SERVICE_UNAVAILABLE", '
                           '"message": "the database is unavailable"}}')

    c.page.route("**/dev/messages*", fail)
    _wait_until(c, lambda: len(failed) >= 4)                 # four polls failed
    assert c.page.get_by_text("the database is unavailable").count() == 1
    c.page.unroute("**/dev/messages*")
    c.page.get_by_text("the database is unavailable").wait_for(state="hidden", timeout=5_000)


@pytest.mark.parametrize("width, height", [(390, 844), (412, 915)])
def test_on_a_phone_screen_the_newest_message_is_above_the_message_bar(chat, runtime, width, height):
    from core.messaging import outbox

    long_ref = "Ref tr_" + "00VcCkiRURo7eBsuam2CbR4L" * 3
    with runtime.uow() as uow:
        for i in range(30):
            outbox.send_whatsapp(uow, runtime, A, f"message {i}: US$12.50 sent.\n{long_ref}")
        outbox.send_whatsapp(uow, runtime, A, "the newest message")
        uow.commit()
    c = chat(viewport={"width": width, "height": height}, is_mobile=True, has_touch=True).open()
    c.use("0881234567")
    newest = c.bot_says("the newest message")
    c.page.wait_for_function("() => { const l = document.getElementById('log');"
                             " return l.scrollHeight - l.scrollTop - l.clientHeight < 2; }")
    bubble, bar = newest.bounding_box(), c.page.locator("#compose").bounding_box()
    assert bubble["y"] >= 0 and bubble["y"] + bubble["height"] <= bar["y"] + 0.5, (bubble, bar)
    assert c.page.evaluate("document.documentElement.scrollWidth") <= width, "nothing runs off the side"
    ref = c.page.locator(".msg.out", has_text="message 29").bounding_box()
    assert ref["x"] >= 0 and ref["x"] + ref["width"] <= width, "a long reference wraps inside its bubble"
    c.screenshot(f"chat-{width}px.png")


def test_a_claim_link_is_clickable_and_read_decoded(chat, client, runtime):
    """Money sent to a new number: its chat shows the wa.me link decoded ("CLAIM K7M2…"),
    and a tap on it types the claim into the message box, as WhatsApp would."""
    from core.identity import users
    from core.wallets import sandbox, transfers

    with runtime.uow() as uow:
        musu, _ = sandbox.make_buyer(uow, A)
        musu.profile_name = "Musu"
        t = transfers.send(uow, runtime, sender=transfers.Party("user", musu.id, False), amount=7_50,
                           currency="USD", to_phone="+231886100009")
        uow.commit()
        assert users.find_by_phone(uow, "+231886100009") is None
    c = chat(viewport={"width": 412, "height": 915}).open()
    c.use("0886100009")
    notice = c.bot_says("sent you US$7.50")
    link = notice.locator("a")
    assert link.count() == 1
    href, shown = link.get_attribute("href"), link.inner_text()
    code = re.search(r"CLAIM%20([A-Z0-9]{8})", href).group(1)
    assert href.startswith("https://wa.me/231770000000?text=") and f"?text=CLAIM {code}" in shown
    link.click()
    assert c.page.input_value("#text") == f"CLAIM {code}"
    c.screenshot("chat-claim-link.png")
    c.page.press("#text", "Enter")                    # carried out right after the login
    c.bot_says("To log in, reply with the 6-digit code")
    code_msg = c.bot_says("Your Soxara code is").inner_text()
    c.say(re.search(r"\b(\d{6})\b", code_msg).group(1))
    c.bot_says("Choose a 4–6 digit PIN")
    c.say(PIN)
    c.bot_says("same PIN again")
    c.say(PIN)
    c.bot_says("You claimed US$7.50")
    with runtime.uow() as uow:
        assert transfers.get(uow, t.id).status == "claimed"
