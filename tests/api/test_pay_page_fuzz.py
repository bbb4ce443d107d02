"""Whatever a browser (or anyone) sends the pay page, it answers with a page, never a 5xx,
and a payment moves only through a whole, valid form. Hypothesis, bounded and
derandomized like tests/api/test_fuzz.py (the page is HTML, outside the /v1 OpenAPI
document that schemathesis drives)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.wallets import ledger
from tests.api.test_pay_page import CARD_OK, PayPage, new_payment, shop  # noqa: F401 - shop: the fixture

EXAMPLES = int(os.environ.get("SOXARA_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

texts = st.text(max_size=60)
phones = st.one_of(texts, st.sampled_from(["0881111000", "+231881111001", "0886 123 456", "+14155552671", ""]))
card_numbers = st.one_of(texts, st.sampled_from([CARD_OK, "4000000000000002", "4000002760003184", "1" * 19]))
methods = st.one_of(st.sampled_from(["soxara_wallet", "mtn_momo", "orange_money", "card"]), texts)


@FUZZ
@given(method=methods, phone=phones, number=card_numbers, expiry=texts, cvc=texts,
       drop=st.sets(st.sampled_from(["client_secret", "attempt", "csrf", "method"])),
       garble=st.sampled_from([None, "client_secret", "attempt", "csrf"]))
def test_any_form_gets_a_page_never_a_server_error(client, shop, runtime, method, phone, number,  # noqa: F811
                                                    expiry, cvc, drop, garble):
    d = new_payment(shop)
    pp = PayPage(client, d["id"], d["client_secret"])
    form = pp.form(method, phone=phone, card_number=number, card_expiry=expiry, card_cvc=cvc)
    for name in drop:
        del form[name]
    if garble and garble in form:
        form[garble] = form[garble][:-1] + ("x" if form[garble][-1:] != "x" else "y")
    r = pp.post(form)
    assert r.status_code in (303, 403, 404, 422), (r.status_code, pp.text(r))
    if drop & {"client_secret", "attempt", "csrf"} or garble:
        assert r.status_code in (403, 404), "no payment moves without this page's secret and token"
    if r.status_code != 303:
        assert r.mimetype == "text/html" and r.headers["Cache-Control"] == "no-store"
    with runtime.uow() as uow:
        assert ledger.check(uow) == []


@FUZZ
@given(payment_id=st.text(max_size=50), secret=st.one_of(st.none(), st.text(max_size=120)))
def test_any_link_gets_a_page_never_a_server_error(client, payment_id, secret):
    path = "/pay/" + "".join(c for c in payment_id if c not in "/?#%\x00")
    r = client.get(path, query_string={} if secret is None else {"client_secret": secret})
    assert r.status_code in (404, 308), r.status_code


@FUZZ
@given(outcome=st.one_of(st.sampled_from(["complete", "fail"]), texts),
       drop=st.sets(st.sampled_from(["client_secret", "attempt", "csrf", "outcome"])),
       garble=st.sampled_from([None, "client_secret", "attempt", "csrf"]))
def test_any_3d_secure_form_gets_a_page_never_a_server_error(client, shop, runtime, outcome, drop,  # noqa: F811
                                                             garble):
    d = new_payment(shop)
    pp = PayPage(client, d["id"], d["client_secret"])
    pp.card("4000002760003184")
    form = {**pp.tokens(), "outcome": outcome}
    for name in drop:
        del form[name]
    if garble and garble in form:
        form[garble] = form[garble][:-1] + ("x" if form[garble][-1:] != "x" else "y")
    r = client.post(f"/pay/{pp.id}/authenticate", data=form)
    assert r.status_code in (303, 403, 404), (r.status_code, pp.text(r))
    if drop & {"client_secret", "attempt", "csrf"} or garble:
        assert r.status_code in (403, 404), "no step is answered without this page's secret and token"
    with runtime.uow() as uow:
        assert ledger.check(uow) == []
