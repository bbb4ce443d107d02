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
