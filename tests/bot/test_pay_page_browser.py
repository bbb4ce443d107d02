"""The pay page in a real browser (headless Chromium, JavaScript off, a phone's screen):
a test card paid to the outcome, MTN MoMo followed by the page's own meta refresh until
the rail answers, a declined card read plainly, and a card that asks for 3-D Secure
completed on the page's test step.

Screenshots go to $SOXARA_SCREENSHOTS when it is set (docs/screenshots holds the ones
docs/pay-page.md shows: `SOXARA_SCREENSHOTS=docs/screenshots pytest tests/bot/test_pay_page_browser.py`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.api.test_pay_page import merchant_balance, new_payment, shop, status, sweep  # noqa: F401 - shop: the fixture
from tests.bot.test_browser import browser, live_server  # noqa: F401 - the fixtures, shared

pytestmark = pytest.mark.browser

WIDTH = 360
PHONE_SCREEN: dict = {"viewport": {"width": WIDTH, "height": 740}, "is_mobile": True, "has_touch": True,
                "device_scale_factor": 2, "java_script_enabled": False}


@pytest.fixture
def phone_page(browser, live_server, shop):  # noqa: F811 - fixtures
    """A payment's page opened on a small phone with JavaScript off: (page, payment id)."""
    def open_page(**body):
        d = new_payment(shop, **body)
        page = browser.new_context(**PHONE_SCREEN).new_page()
        page.goto(d["pay_url"].replace("http://soxara.test", live_server))
        return page, d["id"]
    return open_page


def screenshot(page, name: str) -> None:
    where = os.environ.get("SOXARA_SCREENSHOTS")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(where) / name), full_page=True)


def fits_the_screen(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH, "nothing runs off the side"
    for button in page.locator("button:visible").all():
        assert button.bounding_box()["height"] >= 44, "a Pay button is a thumb's size"


def test_a_test_card_is_paid_on_a_phone_without_javascript(phone_page, runtime, shop):  # noqa: F811
    page, pid = phone_page(customer_phone="+231886400001")
    assert page.get_by_text("US$12.50", exact=True).is_visible() and page.get_by_text("Kpelle Crafts").is_visible()
    fits_the_screen(page)
    screenshot(page, "pay-methods.png")
    page.locator("#card summary").tap()
    card = page.locator("#card form")
    card.locator("[name=card_number]").fill("4242 4242 4242 4242")
    card.locator("[name=card_expiry]").fill("12/29")
    card.locator("[name=card_cvc]").fill("123")
    fits_the_screen(page)
    screenshot(page, "pay-card-form.png")
    card.locator("button").tap()
    page.get_by_role("heading", name="Paid").wait_for(timeout=10_000)
    assert page.get_by_text("US$12.50 paid to Kpelle Crafts.").is_visible()
    screenshot(page, "pay-card-paid.png")
    assert status(runtime, pid) == ("succeeded", None) and merchant_balance(runtime, shop) == 12_50 - 49


def test_mtn_momo_waits_on_the_phone_and_the_page_follows_it_to_paid(phone_page, runtime, shop):  # noqa: F811
    page, pid = phone_page()
    page.locator("#mtn_momo summary").tap()
    momo = page.locator("#mtn_momo form")
    momo.locator("[name=phone]").fill("0886 400 002")
    momo.locator("button").tap()
    page.get_by_role("heading", name="Approve on your phone").wait_for(timeout=10_000)
    assert page.get_by_text("MTN MoMo is asking 0886400002 to approve US$12.50").is_visible()
    fits_the_screen(page)
    screenshot(page, "pay-momo-waiting.png")
    assert status(runtime, pid)[0] == "requires_action"
    sweep(runtime, after_seconds=6)  # the worker's clock; the sandbox rail answers after 5 s
    # Nobody touches the page: its meta refresh (no JavaScript) brings the outcome.
    page.get_by_role("heading", name="Paid").wait_for(timeout=15_000)
    screenshot(page, "pay-momo-paid.png")
    assert merchant_balance(runtime, shop) == 12_50 - 31


def test_a_declined_card_reads_plainly(phone_page, runtime, shop):  # noqa: F811
    page, pid = phone_page()
    page.locator("#card summary").tap()
    card = page.locator("#card form")
    card.locator("[name=card_number]").fill("4000 0000 0000 0002")
    card.locator("[name=card_expiry]").fill("12/29")
    card.locator("[name=card_cvc]").fill("123")
    card.locator("button").tap()
    page.get_by_role("heading", name="Payment failed").wait_for(timeout=10_000)
    assert page.get_by_text("Your card was declined.").is_visible()
    screenshot(page, "pay-card-declined.png")
    assert status(runtime, pid)[0] == "failed" and merchant_balance(runtime, shop) == 0


def test_a_card_that_asks_for_3d_secure_is_completed_on_the_test_step(phone_page, runtime, shop):  # noqa: F811
    page, pid = phone_page()
    page.locator("#card summary").tap()
    card = page.locator("#card form")
    card.locator("[name=card_number]").fill("4000 0027 6000 3184")
    card.locator("[name=card_expiry]").fill("12/29")
    card.locator("[name=card_cvc]").fill("123")
    card.locator("button").tap()
    page.get_by_role("heading", name="Your card asks for an extra check").wait_for(timeout=10_000)
    complete = page.get_by_role("button", name="Complete authentication")
    assert complete.is_visible() and page.get_by_role("button", name="Fail authentication").is_visible()
    fits_the_screen(page)
    screenshot(page, "pay-3ds.png")
    assert status(runtime, pid)[0] == "requires_action" and merchant_balance(runtime, shop) == 0
    complete.tap()
    page.get_by_role("heading", name="Paid").wait_for(timeout=10_000)
    assert page.get_by_text("US$12.50 paid to Kpelle Crafts.").is_visible()
    assert status(runtime, pid) == ("succeeded", None) and merchant_balance(runtime, shop) == 12_50 - 49
