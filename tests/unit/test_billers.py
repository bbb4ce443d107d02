"""Billers: the list `GET /v1/billers` shows (from configuration, LEC and LWSC by default),
the Biller interface and the sandbox TIMM biller's documented account numbers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from core.billers import DEFAULT_BILLERS, billers_for, catalog
from core.billers.sandbox import SETTLES_AFTER, SandboxTimm
from core.config import ConfigError, Settings
from core.rails import RailUnavailable

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)
LEC_METER, LWSC_ACCOUNT = "04123456789", "20012345"


def test_lec_and_lwsc_by_default_with_every_field_the_contract_lists():
    shown = [b.as_dict() for b in catalog(Settings())]
    assert [b["code"] for b in shown] == ["LEC", "LWSC"]
    for b in shown:
        assert set(b) == {"code", "name", "category", "prepaid", "currencies", "account_number_pattern",
                          "account_number_example"}
    lec, lwsc = catalog(Settings())
    assert (lec.category, lec.prepaid, lwsc.category, lwsc.prepaid) == ("electricity", True, "water", False)
    assert lec.accepts(lec.account_number_example) and lwsc.accepts(lwsc.account_number_example)
    assert not lec.accepts("0412345678x") and not lec.accepts("")


def test_more_billers_by_configuration():
    more = [*[b.as_dict() for b in DEFAULT_BILLERS],
            {"code": "LIBTELCO", "name": "LIBTELCO Internet", "category": "internet", "prepaid": True,
             "currencies": ["USD"], "account_number_pattern": "^[0-9]{9}$", "account_number_example": "886123456"}]
    settings = Settings.from_env({"SOXARA_BILLERS": json.dumps(more)})
    assert [b.code for b in catalog(settings)] == ["LEC", "LWSC", "LIBTELCO"]
    assert catalog(settings)[2].accepts("886123456")


@pytest.mark.parametrize("bad", [
    "not json", "{}", "[]",
    json.dumps([{"code": "LEC"}]),                                              # fields missing
    json.dumps([{**DEFAULT_BILLERS[0].as_dict(), "currencies": ["EUR"]}]),      # not a Soxara currency
    json.dumps([{**DEFAULT_BILLERS[0].as_dict(), "account_number_pattern": "("}]),  # not a pattern
    json.dumps([{**DEFAULT_BILLERS[0].as_dict(), "account_number_example": "x"}]),  # example fails it
    json.dumps([DEFAULT_BILLERS[0].as_dict()] * 2),                             # a code twice
])
def test_a_bad_biller_list_refuses_to_start(bad):
    with pytest.raises(ConfigError, match="SOXARA_BILLERS"):
        Settings.from_env({"SOXARA_BILLERS": bad})


def pay(account: str, biller: str = "LEC", amount: int = 2000, currency: str = "USD", reference="bp_1"):
    return SandboxTimm().pay(reference=reference, biller=biller, account_number=account, amount=amount,
                             currency=currency, now=NOW)


def status(account: str, after: timedelta, biller: str = "LEC", reference="bp_1"):
    return SandboxTimm().status(reference=reference, biller=biller, account_number=account, amount=2000,
                                currency="USD", started_at=NOW, now=NOW + after)


def test_a_payment_settles_about_five_seconds_later_with_a_20_digit_token_for_prepaid_electricity():
    assert pay(LEC_METER).status == "pending"
    assert status(LEC_METER, SETTLES_AFTER - timedelta(seconds=1)).status == "pending"
    done = status(LEC_METER, SETTLES_AFTER)
    assert done.status == "succeeded" and len(done.token) == 20 and done.token.isdigit()
    assert done.units and done.units.endswith("kWh")
    assert status(LEC_METER, timedelta(minutes=5)).token == done.token, "asked again: the same token"
    assert status(LEC_METER, SETTLES_AFTER, reference="bp_2").token != done.token, "each payment its own"


def test_water_settles_without_a_token():
    done = status(LWSC_ACCOUNT, SETTLES_AFTER, biller="LWSC")
    assert (done.status, done.token, done.units) == ("succeeded", None, None)


def test_the_documented_account_number_that_is_rejected():
    r = pay("04100000001")
    assert (r.status, r.failure_code) == ("failed", "invalid_account_number")
    assert status("04100000001", SETTLES_AFTER).status == "failed"


def test_the_documented_account_number_that_times_out_once_then_succeeds():
    first = pay("04100000002")
    assert (first.status, first.timed_out) == ("pending", True), "no answer: the outcome is unknown"
    assert status("04100000002", timedelta(seconds=1)).status == "succeeded", "the status query finds it paid"


def test_the_documented_account_number_that_stays_pending_until_a_status_query():
    assert pay("04100000003").status == "pending"
    assert status("04100000003", timedelta(0)).status == "succeeded"


def test_a_currency_the_biller_does_not_take_fails():
    r = pay(LEC_METER, currency="EUR")
    assert (r.status, r.failure_code) == ("failed", "unsupported_currency")


def test_which_biller_rail_carries_each_modes_money():
    dev = billers_for(Settings())
    assert isinstance(dev.rail(livemode=False), SandboxTimm) and isinstance(dev.rail(livemode=True), SandboxTimm)
    prod = billers_for(Settings(env="production"))
    assert isinstance(prod.rail(livemode=False), SandboxTimm), "test mode keeps the sandbox"
    with pytest.raises(RailUnavailable, match="TIMM is not available for live payments"):
        prod.rail(livemode=True)
    assert dev.get("LWSC").name and dev.get("NOPE") is None
