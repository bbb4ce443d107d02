"""A test card's 3-D Secure step (`4000002760003184`): completed or failed, in core
(payments.authenticate) and on the pay page's two buttons; twice, too late, with a wrong
secret or token, on a payment that is not waiting for it; the API's next_action; and the
ledger to the cent after each."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.db import utcnow
from core.errors import InvalidState
from core.payments import payments as payments_core
from core.wallets import ledger, wallets
from tests.api.test_pay_page import (  # noqa: F401 - shop, page: the fixtures
    BUYER,
    CARD_3DS,
    CARD_OK,
    NET,
    PayPage,
    buyer,
    events_of,
    merchant_balance,
    new_payment,
    page,
    shop,
    status,
)

FEE = 1250 - NET


def money(runtime, shop) -> tuple[int, int, int]:  # noqa: F811 - fixtures
    """(merchant, fees account, card clearing) in test USD, the ledger check run first."""
    with runtime.uow() as uow:
        assert ledger.check(uow) == []
        owners = [(wallets.MERCHANT, shop.merchant_id), (wallets.SYSTEM, "fees"), (wallets.SYSTEM, "card_clearing")]
        found = [wallets.find_wallet(uow, kind, owner, "USD", False) for kind, owner in owners]
        return tuple(w.balance if w else 0 for w in found)  # type: ignore[return-value]


NOTHING_MOVED = (0, 0, 0)
PAID = (NET, FEE, -1250)


def waiting(page) -> PayPage:  # noqa: F811 - fixtures
    """A payment whose test card asks for 3-D Secure, its page showing the step."""
    pp = page()
    pp.card(CARD_3DS)
    assert "Complete authentication" in pp.text(), pp.text()
    return pp


def authenticate(runtime, pid: str, completed: bool, now=None):
    with runtime.uow() as uow:
        p = payments_core.authenticate(uow, runtime, pid, completed=completed, now=now)
        uow.commit()
        return p.status


def step(pp: PayPage, outcome: str, form: dict | None = None):
    """Tap one of the step's buttons (on the page last opened, or `form`'s)."""
    form = form or pp.tokens()
    return pp.client.post(f"/pay/{pp.id}/authenticate", data={**form, "outcome": outcome})


def expire(runtime, pid: str) -> None:
    """The step's 15 minutes have passed (and the sweep has not run yet)."""
    with runtime.uow() as uow:
        p = uow.session.get(payments_core.Payment, pid)
        p.action_expires_at = utcnow() - timedelta(seconds=1)
        uow.commit()


# --- core ------------------------------------------------------------------------------------


def test_completed_the_card_is_charged_with_its_fee(page, runtime, shop):  # noqa: F811 - fixtures
    pp = waiting(page)
    assert authenticate(runtime, pp.id, True) == "processing"  # the rail answers after the commit
    assert status(runtime, pp.id) == ("succeeded", None)
    assert money(runtime, shop) == PAID
    assert events_of(runtime, pp.id) == ["payment.created", "payment.requires_action", "payment.succeeded"]
    with runtime.uow() as uow:
        p = uow.session.get(payments_core.Payment, pp.id)
        assert (p.fee, p.card_last4, p.next_check_at, p.next_action) == (FEE, "3184", None, None)


def test_failed_the_payment_fails_and_nothing_moves(page, runtime, shop):  # noqa: F811 - fixtures
    pp = waiting(page)
    authenticate(runtime, pp.id, False)
    assert status(runtime, pp.id) == ("failed", "authentication_failed")
    assert money(runtime, shop) == NOTHING_MOVED
    assert events_of(runtime, pp.id)[-1] == "payment.failed"
    with runtime.uow() as uow:
        snap = payments_core.snapshot(uow.session.get(payments_core.Payment, pp.id))
    assert snap["last_payment_error"]["code"] == "authentication_failed" and snap["next_action"] is None


@pytest.mark.parametrize("first, second", [(True, True), (True, False), (False, True)])
def test_a_second_answer_is_refused_and_changes_nothing(page, runtime, shop, first, second):  # noqa: F811 - fixtures
    pp = waiting(page)
    authenticate(runtime, pp.id, first)
    before = (status(runtime, pp.id), money(runtime, shop), events_of(runtime, pp.id))
    with pytest.raises(InvalidState):
        authenticate(runtime, pp.id, second)
    assert (status(runtime, pp.id), money(runtime, shop), events_of(runtime, pp.id)) == before
    assert before[1] == (PAID if first else NOTHING_MOVED)


@pytest.mark.parametrize("completed", [True, False])
def test_after_the_window_the_payment_fails_expired_and_nothing_moves(page, runtime, shop, completed):  # noqa: F811 - fixtures
    pp = waiting(page)
    late = utcnow() + payments_core.APPROVAL_WINDOW + timedelta(seconds=1)
    assert authenticate(runtime, pp.id, completed, now=late) == "failed"
    assert status(runtime, pp.id) == ("failed", "authentication_expired")
    assert money(runtime, shop) == NOTHING_MOVED
    assert events_of(runtime, pp.id).count("payment.failed") == 1


def test_only_a_card_payment_waiting_for_its_step_can_be_authenticated(page, runtime, shop):  # noqa: F811 - fixtures
    payable = page()
    momo = page()
    momo.pay("mtn_momo", phone="0881234567")  # waits on the phone: requires_action, not a card
    paid = page()
    paid.card(CARD_OK)
    buyer(runtime)
    for pp in (payable, momo, paid):
        before = (status(runtime, pp.id), events_of(runtime, pp.id))
        for completed in (True, False):
            with pytest.raises(InvalidState):
                authenticate(runtime, pp.id, completed)
        assert (status(runtime, pp.id), events_of(runtime, pp.id)) == before
    assert status(runtime, momo.id)[0] == "requires_action"
    assert merchant_balance(runtime, shop) == NET  # the one card paid, nothing else


def test_the_api_shows_where_the_step_is_done(page, runtime, shop):  # noqa: F811 - fixtures
    pp = waiting(page)
    got = shop.get(f"/v1/payments/{pp.id}").get_json()["data"]
    action = got["next_action"]
    assert action["type"] == "3ds_authentication" and action["expires_at"]
    assert action["url"] == f"{runtime.settings.public_url}/pay/{pp.id}"
    # The page at that url, opened with the payment's client secret, is the step.
    assert pp.client.get(f"{action['url'].removeprefix(runtime.settings.public_url)}"
                         f"?client_secret={pp.secret}").status_code == 200
    listed = shop.get("/v1/payments").get_json()["data"]["items"]
    assert listed[0]["next_action"]["url"] == action["url"]
    authenticate(runtime, pp.id, True)
    assert shop.get(f"/v1/payments/{pp.id}").get_json()["data"]["next_action"] is None


def test_a_wallet_wait_shows_no_url(page, runtime, shop):  # noqa: F811 - fixtures
    """Only a card's step is done on the page: a WhatsApp approval is done in the chat."""
    d = new_payment(shop)
    r = shop.post(f"/v1/payments/{d['id']}/confirm",
                  {"payment_method": {"type": "mtn_momo", "phone_number": "+231881234567"}})
    assert r.status_code == 200, r.get_json()
    action = shop.get(f"/v1/payments/{d['id']}").get_json()["data"]["next_action"]
    assert action["type"] == "mobile_money_approval" and action["url"] is None


# --- the page -------------------------------------------------------------------------------------


def test_complete_on_the_page_pays(page, runtime, shop):  # noqa: F811 - fixtures
    pp = waiting(page)
    r = step(pp, "complete")
    assert r.status_code == 303 and r.headers["Location"].endswith(pp.url)
    pp.open()
    assert "Paid" in pp.text() and "Complete authentication" not in pp.text()
    assert money(runtime, shop) == PAID


def test_fail_on_the_page_fails_plainly_and_takes_nothing(page, runtime, shop):  # noqa: F811 - fixtures
    pp = waiting(page)
    assert step(pp, "fail").status_code == 303
    pp.open()
    text = pp.text()
    assert "Payment failed" in text and "Your bank's extra check failed." in text and "Nothing was taken." in text
    assert status(runtime, pp.id) == ("failed", "authentication_failed")
    assert money(runtime, shop) == NOTHING_MOVED


def test_the_same_button_twice_the_other_one_after_and_another_tab_run_once(page, runtime, shop):  # noqa: F811 - fixtures
    pp = waiting(page)
    form = pp.tokens()
    pp.open()
    other_tab = pp.tokens()  # another rendering of the page, its own attempt
    assert other_tab["attempt"] != form["attempt"]
    codes = [step(pp, "complete", form).status_code, step(pp, "complete", form).status_code,
             step(pp, "fail", form).status_code, step(pp, "fail", other_tab).status_code]
    assert codes == [303, 303, 303, 303]
    assert status(runtime, pp.id) == ("succeeded", None)
    assert events_of(runtime, pp.id).count("payment.succeeded") == 1
    assert "payment.failed" not in events_of(runtime, pp.id)
    assert money(runtime, shop) == PAID


def test_too_late_on_the_page_says_expired_and_takes_nothing(page, runtime, shop):  # noqa: F811 - fixtures
    pp = waiting(page)
    expire(runtime, pp.id)
    assert step(pp, "complete").status_code == 303
    pp.open()
    assert "Payment request expired" in pp.text() and "extra check was not completed" in pp.text()
    assert status(runtime, pp.id) == ("failed", "authentication_expired")
    assert money(runtime, shop) == NOTHING_MOVED


def test_a_wrong_secret_or_token_is_refused_and_nothing_moves(page, runtime, shop):  # noqa: F811 - fixtures
    pp = waiting(page)
    form = pp.tokens()
    wrong_secret = {**form, "client_secret": form["client_secret"][:-1] + ("x" if form["client_secret"][-1] != "x" else "y")}
    forged = {**form, "csrf": "0" * 64}
    no_token = {k: v for k, v in form.items() if k != "csrf"}
    assert step(pp, "complete", wrong_secret).status_code == 404
    assert step(pp, "complete", forged).status_code == 403
    assert step(pp, "complete", no_token).status_code == 403
    other = page()  # another payment's own page and token
    other.open()
    assert step(pp, "complete", other.tokens()).status_code == 404
    assert status(runtime, pp.id)[0] == "requires_action" and money(runtime, shop) == NOTHING_MOVED


@pytest.mark.parametrize("outcome", ["", "succeed", "COMPLETE"])
def test_an_outcome_the_page_never_offers_changes_nothing(page, runtime, shop, outcome):  # noqa: F811 - fixtures
    pp = waiting(page)
    assert step(pp, outcome).status_code == 303
    assert status(runtime, pp.id)[0] == "requires_action" and money(runtime, shop) == NOTHING_MOVED


def test_the_step_on_a_payment_not_waiting_for_it_changes_nothing(page, runtime, shop):  # noqa: F811 - fixtures
    payable = page()
    payable.open()
    assert "Complete authentication" not in payable.text()
    assert step(payable, "complete").status_code == 303
    assert status(runtime, payable.id) == ("requires_payment_method", None)
    buyer(runtime)
    wallet = page()
    wallet.open()
    before_paying = wallet.tokens()  # a token of this page, from an older tab
    wallet.pay("soxara_wallet", phone=BUYER)
    assert step(wallet, "fail", before_paying).status_code == 303
    assert status(runtime, wallet.id) == ("succeeded", None)
    assert events_of(runtime, wallet.id).count("payment.failed") == 0


def test_an_answer_lost_after_the_commit_is_found_by_the_sweep(page, runtime, shop, monkeypatch):  # noqa: F811
    """The rail raised (or the process died) after the step was committed: the payment is
    `processing` with a due time, and the sweep asks the rail (the sandbox keeps no
    charges: `charge_incomplete`, nothing taken)."""
    from core.rails.cards import SandboxCards
    from tests.api.test_pay_page import sweep

    def down(self, **kw):
        raise ConnectionError("the network did not answer")

    pp = waiting(page)
    monkeypatch.setattr(SandboxCards, "authenticate", down)
    assert step(pp, "complete").status_code == 303
    assert status(runtime, pp.id)[0] == "processing" and money(runtime, shop) == NOTHING_MOVED
    sweep(runtime, after_seconds=5)
    assert status(runtime, pp.id)[0] == "processing", "not due before CARD_RECHECK"
    sweep(runtime, after_seconds=31)
    assert status(runtime, pp.id) == ("failed", "charge_incomplete") and money(runtime, shop) == NOTHING_MOVED
