"""Payment fees: basis points per method, rounded half up, given back in proportion."""

from __future__ import annotations

import pytest

from core.config import ConfigError, Settings
from core.payments import fees


def test_the_default_fees_round_half_up_and_never_exceed_the_amount():
    s = Settings()
    assert fees.fee_for(s, "soxara_wallet", 1250) == 13      # 12.50 at 1%: 0.125 -> 0.13
    assert fees.fee_for(s, "soxara_wallet", 1249) == 12
    assert fees.fee_for(s, "card", 10000) == 390
    assert fees.fee_for(s, "mtn_momo", 1) == 0
    assert fees.fee_for(Settings(payment_fees='{"card": 2000}'), "card", 1) == 0


def test_the_fee_goes_back_in_proportion_and_wholly_with_the_last_refund():
    assert [fees.fee_returned(33, 1000, r) for r in (0, 1, 500, 999, 1000)] == [0, 0, 16, 32, 33]
    # Whatever the refunds' sizes, their shares add up to the fee exactly.
    parts, given = [7, 300, 1, 692], 0
    for i in range(len(parts)):
        given += fees.fee_returned(33, 1000, sum(parts[:i + 1])) - fees.fee_returned(33, 1000, sum(parts[:i]))
    assert given == 33


@pytest.mark.parametrize("raw", ['{"card": 2001}', '{"card": -1}', '{"card": 1.5}', '{"paypal": 10}', "[1]",
                                 "not json", '{"card": true}'])
def test_a_malformed_fee_schedule_refuses_to_start(raw):
    with pytest.raises(ConfigError):
        Settings.from_env({"SOXARA_PAYMENT_FEES": raw})


def test_a_fee_schedule_overrides_only_what_it_names():
    s = Settings.from_env({"SOXARA_PAYMENT_FEES": '{"card": 350}'})
    assert fees.schedule(s) == {**fees.DEFAULT_BPS, "card": 350}
