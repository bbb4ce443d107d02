import re

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
    assert format_amount(1250, "USD") == "US$12.50"
    assert format_amount(100000, "LRD") == "L$1,000.00"
    assert format_amount(-5, "USD") == "-US$0.05"


# --- one rule for amounts and currencies, wherever they arrive ----------------------------

MAX = 100_000_000_00


def _api_code(e) -> str:
    """The API's code for a field's refusal: the message's UPPER_SNAKE prefix, else
    VALIDATION_ERROR (api/schemas/fields.py)."""
    head = str(e.messages[0]).split(":", 1)[0]
    return head if re.fullmatch(r"[A-Z][A-Z_]+", head) else "VALIDATION_ERROR"


@pytest.mark.parametrize("value,code", [
    (1, None), (MAX, None), (1250, None),
    (0, "AMOUNT_TOO_SMALL"), (-1, "AMOUNT_TOO_SMALL"), (MAX + 1, "AMOUNT_TOO_LARGE"),
    (True, "VALIDATION_ERROR"), (False, "VALIDATION_ERROR"), (12.5, "VALIDATION_ERROR"),
    (1.0, "VALIDATION_ERROR"), ("5", "VALIDATION_ERROR"), (None, "VALIDATION_ERROR"),
])
def test_the_api_and_core_judge_an_amount_alike(value, code):
    """The API's Amount field is core's check: the same verdict and code for every value."""
    from marshmallow import ValidationError

    from api.schemas.fields import Amount
    from core.amounts import check_amount

    try:
        check_amount(value)
        core_code = None
    except InvalidInput as e:
        core_code = e.code
    try:
        Amount().deserialize(value)
        api_code = None
    except ValidationError as e:
        api_code = _api_code(e)
    assert (core_code, api_code) == (code, code)


@pytest.mark.parametrize("value,ok", [("USD", True), ("LRD", True), ("EUR", False), ("usd", False),
                                      (None, False), (1, False), ("", False)])
def test_the_api_and_core_judge_a_currency_alike(value, ok):
    from marshmallow import ValidationError

    from api.schemas.fields import Currency
    from core.amounts import check_currency

    verdicts = []
    for judge, refusal in ((check_currency, InvalidInput), (Currency().deserialize, ValidationError)):
        try:
            judge(value)
            verdicts.append(None)
        except refusal as e:
            verdicts.append(e.code if isinstance(e, InvalidInput) else _api_code(e))
    assert verdicts == ([None, None] if ok else ["INVALID_CURRENCY", "INVALID_CURRENCY"])


def test_a_typed_amount_is_held_to_the_same_maximum():
    assert parse_amount(f"{MAX // 100:,}") == MAX
    with pytest.raises(InvalidInput) as e:
        parse_amount(f"{MAX // 100:,}.01")
    assert e.value.code == "AMOUNT_TOO_LARGE"


def test_the_currencies_and_the_maximum_are_written_once():
    """core/amounts.py is the one place for the list of currencies and the maximum amount:
    no other module of the application spells either out again."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    copies = []
    for folder in ("api", "bot", "core", "workers"):
        for path in (root / folder).rglob("*.py"):
            if path == root / "core" / "amounts.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Tuple | ast.List | ast.Set) and \
                        {getattr(e, "value", None) for e in node.elts} == {"USD", "LRD"}:
                    copies.append(f"{path.relative_to(root)}:{node.lineno} the currencies")
                if isinstance(node, ast.Constant) and node.value == MAX and not isinstance(node.value, bool):
                    copies.append(f"{path.relative_to(root)}:{node.lineno} the maximum amount")
    assert copies == []
