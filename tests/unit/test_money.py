import pytest

from core.amounts import format_amount, parse_amount
from core.errors import InvalidInput


@pytest.mark.parametrize("text,minor", [
    ("12.50", 1250), ("1,000", 100000), ("$5", 500), ("1,000.25", 100025), (".5", 50), ("5.", 500),
    (" 7 ", 700), ("1,234,567.89", 123456789),
])
def test_parse_amount(text, minor):
    assert parse_amount(text) == minor


@pytest.mark.parametrize("text,code", [
    ("12,50", "VALIDATION_ERROR"), ("12.345", "VALIDATION_ERROR"), ("-5", "AMOUNT_TOO_SMALL"),
    ("abc", "VALIDATION_ERROR"), ("0", "AMOUNT_TOO_SMALL"), ("1e3", "VALIDATION_ERROR"),
    ("nan", "VALIDATION_ERROR"), ("", "VALIDATION_ERROR"), ("😀", "VALIDATION_ERROR"),
    ("99999999999", "AMOUNT_TOO_LARGE"),
])
def test_parse_amount_refuses(text, code):
    with pytest.raises(InvalidInput) as e:
        parse_amount(text)
    assert e.value.code == code


def test_format_amount():
    assert format_amount(1250, "USD") == "$12.50"
    assert format_amount(100000, "LRD") == "LRD 1,000.00"
    assert format_amount(-5, "USD") == "-$0.05"
