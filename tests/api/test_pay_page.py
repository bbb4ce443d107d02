"""The hosted pay page through the Flask test client: what it shows, who it refuses (a
wrong secret, a missing or forged form token), each method and each outcome, bad input,
a double-tapped Pay button, the link sent by WhatsApp, and the ledger to the cent."""

from __future__ import annotations

import html as html_lib
import logging
import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from core.db import utcnow
from core.events.events import Event
from core.payments import payments as payments_core
from core.wallets import ledger, sandbox, wallets
from tests.conftest import Api, create_merchant
from workers import payments as payment_sweeps

MERCHANT = "Kpelle Crafts"
BUYER = "+231886200001"
CARD_OK, CARD_DECLINED, CARD_3DS = "4242 4242 4242 4242", "4000000000000002", "4000002760003184"


class PayPage:
    """The page as a customer's browser uses it: open the link, read it, submit a form."""

    def __init__(self, client, payment_id: str, client_secret: str):
        self.client, self.id, self.secret = client, payment_id, client_secret
        self.last: Any = None

    @property
    def url(self) -> str:
        return f"/pay/{self.id}?client_secret={self.secret}"

    def open(self):
        self.last = self.client.get(self.url)
        return self.last

    def text(self, resp=None) -> str:
        """What a person reads: the body's text without tags, style or hidden fields."""
        body = (resp or self.last).get_data(as_text=True)
        body = re.sub(r"<style>.*?</style>", "", body, flags=re.S)
        return html_lib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))).strip()

    def tokens(self, resp=None) -> dict:
        body = (resp or self.last).get_data(as_text=True)
        found = {name: re.search(rf'name="{name}" value="([^"]*)"', body)
                 for name in ("client_secret", "attempt", "csrf")}
        return {name: m.group(1) for name, m in found.items() if m}

    def form(self, method: str, **fields) -> dict:
        if self.last is None or 'name="attempt"' not in self.last.get_data(as_text=True):
            self.open()
        return {**self.tokens(), "method": method, **fields}

    def post(self, form: dict):
        return self.client.post(f"/pay/{self.id}", data=form)

    def pay(self, method: str, **fields):
        """Submit the method's form, follow the redirect: the page after."""
        r = self.post(self.form(method, **fields))
        if r.status_code == 303:
            assert r.headers["Location"].endswith(self.url), r.headers["Location"]
            return self.open()
        self.last = r
        return r

    def card(self, number: str, expiry: str = "12/99", cvc: str = "123"):
        return self.pay("card", card_number=number, card_expiry=expiry, card_cvc=cvc)


@pytest.fixture
def shop(client, runtime):
    mid, key = create_merchant(runtime, MERCHANT)
    http = Api(client, key)
    http.merchant_id = mid
    return http


def new_payment(shop, **body) -> dict:
    r = shop.post("/v1/payments", {"amount": 1250, "currency": "USD", "description": "2 baskets", **body})
    assert r.status_code == 201, r.get_json()
    return r.get_json()["data"]


@pytest.fixture
def page(client, shop):
    def make(**body) -> PayPage:
        d = new_payment(shop, **body)
        return PayPage(client, d["id"], d["client_secret"])
    return make


def status(runtime, pid) -> tuple[str, str | None]:
    with runtime.uow() as uow:
        p = uow.session.get(payments_core.Payment, pid)
        return p.status, p.last_error_code


def events_of(runtime, pid) -> list[str]:
    with runtime.uow() as uow:
        return [e.type for e in uow.session.scalars(select(Event).where(Event.object_id == pid).order_by(Event.id))]


def merchant_balance(runtime, shop, livemode=False) -> int:
    """The merchant's USD balance, the ledger check run first."""
    with runtime.uow() as uow:
        assert ledger.check(uow) == []
        w = wallets.find_wallet(uow, wallets.MERCHANT, shop.merchant_id, "USD", livemode)
        return w.balance if w else 0


def buyer(runtime, phone=BUYER, amount=sandbox.BUYER_FUNDS) -> str:
    with runtime.uow() as uow:
        u, _ = sandbox.make_buyer(uow, phone, amount=amount)
        uow.commit()
    return u.id


def sweep(runtime, after_seconds: float) -> None:
    """The scheduler's tick as it would run `after_seconds` from now."""
    payment_sweeps.advance_due(runtime, now=utcnow() + timedelta(seconds=after_seconds))


def refresh_of(resp) -> int | None:
    found = re.search(r'<meta http-equiv="refresh" content="(\d+)">', resp.get_data(as_text=True))
    return int(found.group(1)) if found else None


NET = 1250 - 49  # the card's default fee, 3.9%, on US$12.50


# --- what it shows, to whom ------------------------------------------------------------------


def test_the_page_shows_merchant_amount_description_and_the_ways_to_pay(page):
    pp = page(customer_phone=BUYER)
    r = pp.open()
    assert r.status_code == 200 and r.mimetype == "text/html"
    text = pp.text()
    assert MERCHANT in text and "US$12.50" in text and "2 baskets" in text
    assert "Test payment: no real money moves." in text
    for name in ("Soxara wallet", "MTN MoMo", "Orange Money", "Card"):
        assert f"{name} " in text
    assert 'value="0886200001"' in r.get_data(as_text=True), "the customer's number is filled in, local form"
    assert refresh_of(r) is None, "a payable page does not reload itself"
    h = r.headers
    assert h["Cache-Control"] == "no-store" and h["Referrer-Policy"] == "no-referrer"
    assert h["X-Frame-Options"] == "DENY" and "frame-ancestors 'none'" in h["Content-Security-Policy"]
    body = r.get_data(as_text=True).lower()
    assert "<script" not in body and not re.search(r"\son[a-z]+=", body), "no JavaScript at all"
    assert "script-src" not in h["Content-Security-Policy"], "and none would run"
    assert len(r.data) < 8_000, "small enough for a cheap phone on a slow network"


def test_lrd_amounts_are_written_the_liberian_way(page):
    pp = page(amount=100_000, currency="LRD")
    pp.open()
    assert "L$1,000.00" in pp.text()


def test_a_live_payment_offers_no_card_and_no_test_banner(client, runtime):
    _, key = create_merchant(runtime, MERCHANT, live=True)
    d = new_payment(Api(client, key))
    pp = PayPage(client, d["id"], d["client_secret"])
    pp.open()
    text = pp.text()
    assert "MTN MoMo" in text and "Card" not in text and "Test payment" not in text
    r = pp.post(pp.form("card", card_number=CARD_OK, card_expiry="12/99", card_cvc="123"))
    assert r.status_code == 422 and status(runtime, d["id"]) == ("requires_payment_method", None)


def test_a_wrong_secret_looks_exactly_like_an_unknown_payment(client, page, shop):
    pp = page()
    other = new_payment(shop)
    off = "y" if pp.secret.endswith("x") else "x"  # one character off, whatever the last one was
    wrong = [f"/pay/{pp.id}?client_secret={pp.secret[:-1]}{off}",
             f"/pay/{pp.id}?client_secret={other['client_secret']}",  # another payment's
             f"/pay/{pp.id}", f"/pay/{pp.id}?client_secret=",
             "/pay/pi_doesnotexist?client_secret=" + pp.secret.replace(pp.id, "pi_doesnotexist"),
             f"/pay/{'x' * 5000}?client_secret=abc", f"/pay/{pp.id}?client_secret={'a' * 5000}"]
    bodies = set()
    for url in wrong:
        r = client.get(url)
        assert r.status_code == 404, url
        assert r.headers["Cache-Control"] == "no-store"
        bodies.add(r.get_data(as_text=True))
    assert len(bodies) == 1, "nothing tells a wrong secret from an unknown id"
    assert MERCHANT not in bodies.pop()
    # … and a POST with a wrong secret, even with a real token, is the same 404.
    form = pp.form("card", card_number=CARD_OK, card_expiry="12/99", card_cvc="123")
    r = pp.post({**form, "client_secret": other["client_secret"]})
    assert r.status_code == 404 and status(pp.client.application.extensions["soxara"], pp.id)[0] \
        == "requires_payment_method"


@pytest.mark.parametrize("tamper", ["missing", "wrong", "another_attempt", "another_payment"])
def test_a_post_without_this_pages_token_is_refused_and_nothing_moves(page, runtime, shop, tamper):
    pp, other = page(), page()
    form = pp.form("card", card_number=CARD_OK, card_expiry="12/99", card_cvc="123")
    if tamper == "missing":
        del form["csrf"]
    elif tamper == "wrong":
        form["csrf"] = "0" * 64
    elif tamper == "another_attempt":
        form["attempt"] = "A" * 24
    else:  # a real token, made for another payment's page
        other.open()
        form.update(csrf=other.tokens()["csrf"], attempt=other.tokens()["attempt"])
    r = pp.post(form)
    assert r.status_code == 403
    assert "not sent from this payment's page" in pp.text(r)
    assert status(runtime, pp.id) == ("requires_payment_method", None)
    assert events_of(runtime, pp.id) == ["payment.created"] and merchant_balance(runtime, shop) == 0


# --- each method, each outcome ---------------------------------------------------------------------


def test_a_test_card_pays_and_the_page_says_paid(page, runtime, shop, caplog):
    caplog.set_level(logging.DEBUG)
    pp = page()
    r = pp.card(CARD_OK)
    assert r.status_code == 200 and refresh_of(r) is None
    assert "Paid" in pp.text() and f"US$12.50 paid to {MERCHANT}." in pp.text() and pp.id in pp.text()
    assert status(runtime, pp.id) == ("succeeded", None) and merchant_balance(runtime, shop) == NET
    with runtime.uow() as uow:
        p = uow.session.get(payments_core.Payment, pp.id)
        assert (p.card_brand, p.card_last4) == ("visa", "4242")
    assert "4242424242424242" not in caplog.text and "4242 4242 4242 4242" not in caplog.text


@pytest.mark.parametrize("number, reason", [
    (CARD_DECLINED, "Your card was declined."),
    ("4000000000009995", "Your card has too little money."),
    ("4000000000000069", "Your card has expired."),
])
def test_a_declined_card_fails_with_a_plain_reason(page, runtime, shop, number, reason):
    pp = page()
    pp.card(number)
    text = pp.text()
    assert "Payment failed" in text and reason in text and "Nothing was taken." in text
    assert f"ask {MERCHANT} for a new payment link" in text
    assert "Pay with" not in text, "a failed payment is final: no form"
    assert status(runtime, pp.id)[0] == "failed" and merchant_balance(runtime, shop) == 0


def test_a_card_that_asks_for_3d_secure_offers_the_test_step_and_left_alone_expires(page, runtime, shop):
    pp = page()
    r = pp.card(CARD_3DS)
    assert "Your card asks for an extra check" in pp.text() and refresh_of(r) is None
    assert "Complete authentication" in pp.text() and "Fail authentication" in pp.text()
    assert "Pay with" not in pp.text()
    assert status(runtime, pp.id)[0] == "requires_action" and merchant_balance(runtime, shop) == 0
    sweep(runtime, after_seconds=16 * 60)
    pp.open()
    assert "Payment request expired" in pp.text() and "extra check was not completed" in pp.text()
    assert "Complete authentication" not in pp.text()


@pytest.mark.parametrize("method, number", [("mtn_momo", "0881111000"), ("orange_money", "+231771111000")])
def test_mobile_money_test_numbers_that_succeed_at_once(page, runtime, shop, method, number):
    pp = page()
    pp.pay(method, phone=number)
    assert "Paid" in pp.text() and status(runtime, pp.id) == ("succeeded", None)
    assert merchant_balance(runtime, shop) == 1250 - 31  # 2.5%


def test_mobile_money_waits_on_the_phone_then_the_page_shows_the_outcome(page, runtime, shop):
    pp = page()
    r = pp.pay("mtn_momo", phone="0886200077")
    assert "Approve on your phone" in pp.text() and "MTN MoMo is asking 0886200077 to approve US$12.50" in pp.text()
    assert refresh_of(r) == 3, "the page follows the payment without JavaScript"
    assert status(runtime, pp.id)[0] == "requires_action"
    sweep(runtime, after_seconds=6)  # the sandbox answers after 5 s
    r = pp.open()
    assert "Paid" in pp.text() and refresh_of(r) is None
    assert merchant_balance(runtime, shop) == 1250 - 31


def test_a_number_from_abroad_is_shown_as_typed_not_in_a_liberian_form(page):
    pp = page()
    pp.pay("orange_money", phone="+14155552671")
    assert "Orange Money is asking +14155552671 to approve" in pp.text()


@pytest.mark.parametrize("number, title, reason, after", [
    ("0881111001", "Payment failed", "The request was turned down on the phone.", None),
    ("0881111003", "Payment failed", "The account had too little money.", None),
    ("0881111002", "Payment request expired", "did not answer in time", 61),
])
def test_mobile_money_failures_read_plainly(page, runtime, shop, number, title, reason, after):
    pp = page()
    pp.pay("mtn_momo", phone=number)
    if after:
        assert "Approve on your phone" in pp.text()
        sweep(runtime, after_seconds=1)
        sweep(runtime, after_seconds=after)
        pp.open()
    assert title in pp.text() and reason in pp.text() and "Nothing was taken." in pp.text()
    assert status(runtime, pp.id)[0] == "failed" and merchant_balance(runtime, shop) == 0


def test_a_sandbox_buyers_wallet_pays_at_once(page, runtime, shop):
    uid = buyer(runtime)
    pp = page()
    pp.pay("soxara_wallet", phone="0886200001")
    assert "Paid" in pp.text()
    with runtime.uow() as uow:
        assert wallets.find_wallet(uow, wallets.USER, uid, "USD", False).balance == sandbox.BUYER_FUNDS - 1250
    assert merchant_balance(runtime, shop) == 1250 - 13  # 1%


def test_a_wallet_with_too_little_says_so_on_the_form_and_nothing_moves(page, runtime, shop):
    buyer(runtime, amount=500)
    pp = page()
    r = pp.pay("soxara_wallet", phone="0886200001")
    assert r.status_code == 422
    assert "Your Soxara wallet holds too little" in pp.text() and "Pay with" in pp.text()
    assert 'value="0886200001"' in r.get_data(as_text=True), "what they typed stays, to change it"
    assert status(runtime, pp.id) == ("requires_payment_method", None) and merchant_balance(runtime, shop) == 0
    pp.card(CARD_OK)  # another way, from the same page
    assert "Paid" in pp.text()


def test_a_payment_the_merchant_canceled_says_so_and_takes_no_payment(page, runtime, shop):
    pp = page()
    pp.open()
    form = pp.form("card", card_number=CARD_OK, card_expiry="12/99", card_cvc="123")
    assert shop.post(f"/v1/payments/{pp.id}/cancel").status_code == 200
    r = pp.post(form)  # the page was open before the cancel
    assert r.status_code == 303
    pp.open()
    assert "Payment canceled" in pp.text() and f"{MERCHANT} canceled this payment" in pp.text()
    assert status(runtime, pp.id)[0] == "canceled" and merchant_balance(runtime, shop) == 0


def test_a_refunded_payment_says_how_much_came_back(page, runtime, shop):
    pp = page()
    pp.card(CARD_OK)
    assert shop.post("/v1/refunds", {"payment": pp.id, "amount": 500}).status_code == 201
    pp.open()
    assert "US$5.00 of it was refunded." in pp.text()


# --- bad input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("method, fields, says", [
    ("mtn_momo", {"phone": ""}, "Type your phone number"),
    ("mtn_momo", {"phone": "12"}, "That is not a phone number"),
    ("soxara_wallet", {"phone": "not a phone"}, "That is not a phone number"),
    ("orange_money", {"phone": "9" * 40}, "That is not a phone number"),
    ("card", {"card_number": CARD_OK}, "Type the card number, its expiry"),
    ("card", {"card_number": "4242", "card_expiry": "12/99", "card_cvc": "123"}, "12 to 19 digits"),
    ("card", {"card_number": "４２４２４２４２４２４２４２４２", "card_expiry": "12/99", "card_cvc": "123"},
     "12 to 19 digits"),
    ("card", {"card_number": CARD_OK, "card_expiry": "13/29", "card_cvc": "123"}, "expiry as MM/YY"),
    ("card", {"card_number": CARD_OK, "card_expiry": "1229x", "card_cvc": "123"}, "expiry as MM/YY"),
    ("card", {"card_number": CARD_OK, "card_expiry": "12/29", "card_cvc": "12"}, "3 or 4 digit code"),
    ("bitcoin", {}, "Choose how to pay"),
])
def test_bad_input_is_said_next_to_the_field_and_nothing_changes(page, runtime, method, fields, says):
    pp = page()
    r = pp.post(pp.form(method, **fields))
    assert r.status_code == 422 and says in pp.text(r)
    assert CARD_OK.replace(" ", "") not in r.get_data(as_text=True), "a card number is never echoed back"
    assert status(runtime, pp.id) == ("requires_payment_method", None)
    assert events_of(runtime, pp.id) == ["payment.created"]


def test_an_invalid_card_the_network_refuses_fails_the_payment(page, runtime):
    pp = page()
    pp.card("4242 4242 4242 4241")  # fails the Luhn check at the network
    assert "The card number is not valid." in pp.text() and status(runtime, pp.id)[0] == "failed"


# --- a double tap pays once ----------------------------------------------------------------------------


def test_the_same_form_sent_twice_pays_once(page, runtime, shop):
    pp = page()
    form = pp.form("card", card_number=CARD_OK, card_expiry="12/99", card_cvc="123")
    first, second = pp.post(form), pp.post(form)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    pp.open()
    assert "Paid" in pp.text()
    assert events_of(runtime, pp.id).count("payment.succeeded") == 1
    assert merchant_balance(runtime, shop) == NET


def test_a_second_page_of_a_paid_payment_cannot_pay_again(page, runtime, shop):
    pp = page()
    pp.open()
    old = pp.form("mtn_momo", phone="0881111000")  # an older tab, still open
    pp.last = None
    pp.card(CARD_OK)
    r = pp.post(old)
    assert r.status_code == 303 and merchant_balance(runtime, shop) == NET
    assert events_of(runtime, pp.id).count("payment.succeeded") == 1


# --- the link, and the secret kept out of logs ------------------------------------------------------


def test_the_create_answer_carries_the_pages_url(shop, client, runtime):
    d = new_payment(shop)
    assert d["pay_url"] == f"{runtime.settings.public_url}/pay/{d['id']}?client_secret={d['client_secret']}"
    assert client.get(d["pay_url"].removeprefix(runtime.settings.public_url)).status_code == 200
    again = shop.get(f"/v1/payments/{d['id']}").get_json()["data"]
    assert "pay_url" not in again and "client_secret" not in again


def test_send_link_sends_the_page_by_whatsapp_and_the_transcript_keeps_the_secret_masked(shop, client, runtime):
    from core.messaging import outbox

    d = new_payment(shop, customer_phone=BUYER, send_link=True)
    with runtime.uow() as uow:
        stored = [m.body for m in outbox.outbox_for(uow, BUYER, 10)]
        sent = [m.body for m in outbox.outbox_for(uow, BUYER, 10, secret_key=runtime.secret_key)]
    assert sent == [f"{MERCHANT} asks you to pay US$12.50 for 2 baskets. Pay here: {d['pay_url']}"]
    assert d["client_secret"] not in stored[0] and "••••" in stored[0]
    link = re.search(r"(/pay/\S+)", sent[0]).group(1)
    assert client.get(link).status_code == 200
    assert not outbox_to_anyone_else(runtime, BUYER)


def outbox_to_anyone_else(runtime, phone) -> list:
    from core.messaging.outbox import OutboundMessage

    with runtime.uow() as uow:
        return list(uow.session.scalars(select(OutboundMessage).where(OutboundMessage.to_phone != phone)))


def test_send_link_without_a_customer_phone_is_refused_and_nothing_is_made(shop, runtime):
    r = shop.post("/v1/payments", {"amount": 1250, "currency": "USD", "send_link": True})
    assert r.status_code == 422 and r.get_json()["error"]["details"]["field"] == "send_link"
    r = shop.post("/v1/payments", {"amount": 1250, "currency": "USD", "send_link": "yes",
                                   "customer_phone": BUYER})
    assert r.status_code == 422
    with runtime.uow() as uow:
        assert uow.session.scalars(select(payments_core.Payment)).first() is None


def test_no_log_line_prints_a_client_secret(page, caplog):
    """Access logs print the request line, query string and all (werkzeug's, gunicorn's):
    the secret is cut out of every record, whichever logger writes it."""
    pp = page()
    caplog.set_level(logging.INFO)
    logging.getLogger("werkzeug").info('127.0.0.1 - - "%s %s HTTP/1.1" 200 -', "GET", pp.url)
    logging.getLogger("soxara.test").warning("odd: %s", {"client_secret": pp.secret})
    logging.getLogger("soxara.test").warning(f"typed client_secret=abc{pp.secret[-6:]}&x=1")
    assert pp.secret not in caplog.text and pp.secret[-6:] not in caplog.text
    assert f"/pay/{pp.id}?client_secret=[redacted]" in caplog.text


def test_gunicorns_access_log_prints_no_client_secret(page):
    """`soxara serve`'s access line (its format, gunicorn's own logger), for a page request."""
    import datetime
    import io
    import shlex

    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    import api.cli.serve as serve

    pp = page()
    source = open(serve.__file__).read()
    fmt = shlex.split(re.search(r'"--access-logformat", (\'[^\']+\')', source).group(1))[0]
    cfg = Config()
    cfg.set("accesslog", "-")
    cfg.set("access_log_format", fmt)
    g = Logger(cfg)
    out = io.StringIO()
    for h in g.access_log.handlers:
        h.setStream(out)

    class Resp:
        status, sent, headers = "200 OK", 1234, [("X-Trace-Id", "trc_1")]

    class Req:
        headers: list = []

    environ = {"REQUEST_METHOD": "GET", "RAW_URI": pp.url, "SERVER_PROTOCOL": "HTTP/1.1",
               "PATH_INFO": f"/pay/{pp.id}", "QUERY_STRING": pp.url.split("?", 1)[1], "REMOTE_ADDR": "10.0.0.1"}
    g.access(Resp(), Req(), environ, datetime.timedelta(milliseconds=12))
    line = out.getvalue()
    assert f"GET /pay/{pp.id}?client_secret=[redacted] HTTP/1.1" in line and "trace=trc_1" in line
    assert pp.secret not in line
