"""A Pay button tapped many times at once, and other tabs of the same page paying at the
same moment, on PostgreSQL: one payment, one ledger entry, every cent where it belongs."""

from __future__ import annotations

import pytest

from api.app import create_app
from core.wallets import ledger, sandbox, wallets
from tests.api.test_pay_page import BUYER, CARD_OK, MERCHANT, PayPage, buyer, events_of, new_payment
from tests.conftest import Api, at_once, create_merchant


@pytest.mark.postgres
def test_twenty_taps_at_once_from_one_form_and_other_tabs_pay_once(pg_runtime):
    rt = pg_runtime
    app = create_app(runtime=rt)
    mid, key = create_merchant(rt, MERCHANT)
    uid = buyer(rt)
    d = new_payment(Api(app.test_client(), key))
    pp = PayPage(app.test_client(), d["id"], d["client_secret"])
    same = pp.form("soxara_wallet", phone=BUYER)
    others = []
    for i in range(10):
        pp.open()
        others.append(pp.form("card", card_number=CARD_OK, card_expiry="12/99", card_cvc="123") if i % 2
                      else pp.form("soxara_wallet", phone=BUYER))
    forms = [same] * 10 + others

    def tap(i: int) -> int:
        return app.test_client().post(f"/pay/{pp.id}", data=forms[i]).status_code

    codes = at_once(len(forms), tap)
    assert set(codes) == {303}, codes
    assert events_of(rt, pp.id).count("payment.succeeded") == 1
    with rt.uow() as uow:
        assert ledger.check(uow) == []
        paid_by_wallet = wallets.find_wallet(uow, wallets.USER, uid, "USD", False).balance
        merchant = wallets.find_wallet(uow, wallets.MERCHANT, mid, "USD", False).balance
    # Whichever tap won, exactly one US$12.50 moved, by the wallet (1% fee) or the card (3.9%).
    assert (paid_by_wallet, merchant) in {(sandbox.BUYER_FUNDS - 1250, 1250 - 13),
                                          (sandbox.BUYER_FUNDS, 1250 - 49)}


@pytest.mark.postgres
def test_a_tap_while_the_first_still_runs_waits_for_it_and_runs_nothing(pg_runtime):
    """The first tap holds the attempt's key (here: a transaction that claimed it and has
    not committed); the second finds it in progress, waits for the first's outcome, and
    answers with the page, without confirming anything itself."""
    import threading
    import time

    from api.pay import forms
    from core.crypto import keyed_hash
    from core.idempotency import fingerprint
    from core.payments.payments import PaymentMethod

    rt = pg_runtime
    app = create_app(runtime=rt)
    _, key = create_merchant(rt, MERCHANT)
    buyer(rt)
    d = new_payment(Api(app.test_client(), key))
    pp = PayPage(app.test_client(), d["id"], d["client_secret"])
    form = pp.form("soxara_wallet", phone=BUYER)
    fp = keyed_hash(rt.secret_key, "idempotency", fingerprint(
        "POST", f"/pay/{pp.id}", forms.attempt_fingerprint(PaymentMethod("soxara_wallet", phone=BUYER))))
    with rt.uow() as first:
        claim = rt.idempotency.claim(first, f"pay:{pp.id}", form["attempt"], fp)
        assert claim.outcome == "run"

        def finish_first():
            time.sleep(0.5)
            rt.idempotency.commit(first, claim, 303, b"")

        t = threading.Thread(target=finish_first)
        t.start()
        began = time.monotonic()
        r = pp.post(form)
        took = time.monotonic() - began
        t.join()
    assert r.status_code == 303 and 0.4 < took < 3, took
    assert events_of(rt, pp.id) == ["payment.created"], "the second tap confirmed nothing"


@pytest.mark.postgres
def test_twenty_taps_at_once_on_a_cards_3d_secure_step_answer_it_once(pg_runtime):
    """Complete and Fail tapped together, from one page and from other tabs: the row lock
    lets one through; the charge is made once or not at all, to the cent."""
    from tests.api.test_pay_page import CARD_3DS

    rt = pg_runtime
    app = create_app(runtime=rt)
    mid, key = create_merchant(rt, MERCHANT)
    d = new_payment(Api(app.test_client(), key))
    pp = PayPage(app.test_client(), d["id"], d["client_secret"])
    pp.card(CARD_3DS)
    same = pp.tokens()
    forms = [{**same, "outcome": "complete"}] * 6 + [{**same, "outcome": "fail"}] * 4
    for i in range(10):
        pp.open()
        forms.append({**pp.tokens(), "outcome": "complete" if i % 2 else "fail"})

    def tap(i: int) -> int:
        return app.test_client().post(f"/pay/{pp.id}/authenticate", data=forms[i]).status_code

    codes = at_once(len(forms), tap)
    assert set(codes) == {303}, codes
    done = events_of(rt, pp.id)
    assert done.count("payment.succeeded") + done.count("payment.failed") == 1, done
    with rt.uow() as uow:
        assert ledger.check(uow) == []
        merchant = wallets.find_wallet(uow, wallets.MERCHANT, mid, "USD", False)
        fees = wallets.find_wallet(uow, wallets.SYSTEM, "fees", "USD", False)
        clearing = wallets.find_wallet(uow, wallets.SYSTEM, "card_clearing", "USD", False)
        moved = tuple(w.balance if w else 0 for w in (merchant, fees, clearing))
    assert moved == ((1250 - 49, 49, -1250) if "payment.succeeded" in done else (0, 0, 0)), (done, moved)
