"""Pay a bill (LEC electricity, LWSC water…): biller → account number (the example
shown, the person's last ones offered) → amount → currency (if not typed with it) →
confirm → PIN. The receipt says the payment is on its way; the worker tells the person
when the biller answers, an electricity token in a message of its own
(core/bills/settlement.py).
"""

from __future__ import annotations

from bot import copy
from bot.flows import steps
from bot.flows.base import Flow, MenuEntry, Step, Turn
from core.billers import BillerInfo
from core.bills import bill_payments
from core.errors import InsufficientFunds, InvalidInput, SoxaraError

flow = Flow("pay_bill", menu=MenuEntry(8, copy.MENU_BILL, frozenset({"BILL", "BILLS", "PAY BILL", "PAY A BILL",
                                                                   "PAY BILLS"})),
            cancel=copy.BILL_CANCELLED)

RECENT = 3  # how many of the person's last account numbers are offered


def _catalog(turn: Turn) -> list[BillerInfo]:
    return list(turn.rt.billers.catalog)


def _biller(turn: Turn) -> BillerInfo:
    info = turn.rt.billers.get(turn.values["biller"])
    if info is None:  # the configuration changed mid-flow: start again
        raise InvalidInput("that biller is no longer offered")
    return info


def _word(info: BillerInfo) -> str:
    return copy.account_word(info.prepaid and info.category == "electricity")


def _payer(turn: Turn) -> bill_payments.Payer:
    return bill_payments.Payer("user", turn.logged_in_user_id, turn.livemode)


def advance(turn: Turn) -> None:
    """Ask for what is still missing; with all of it, the confirmation."""
    v = turn.values
    if not v.get("biller"):
        turn.ask(biller)
        return
    if not v.get("account"):
        turn.keep(recent=bill_payments.recent_accounts(turn.uow, _payer(turn), v["biller"], RECENT))
        turn.ask(account)
        return
    if steps.ask_missing(turn, (("amount", amount), ("currency", currency))):
        return
    info = _biller(turn)
    if v["currency"] not in info.currencies:
        turn.keep(amount=None, currency=None)
        turn.next(amount)
        turn.say(copy.bill_currency_not_taken(info.code, list(info.currencies)))
        return
    if (have := turn.balance_of(v["currency"])) < v["amount"]:
        # Said before the PIN is asked for (the payment checks again when it runs).
        turn.keep(amount=None)
        turn.next(amount)
        turn.say(copy.bill_insufficient(v["currency"], have))
        turn.say(copy.BILL_AMOUNT)
        return
    steps.ask_to_confirm(turn, confirm)


def on_biller(turn: Turn, text: str) -> None:
    catalog = _catalog(turn)
    t = text.strip().strip(".").upper()
    chosen = next((b for n, b in enumerate(catalog, start=1)
                   if t in (str(n), b.code.upper(), b.category.upper())), None)
    if chosen is None:
        turn.say(copy.again(copy.bill_which_again([b.code for b in catalog])))
        return
    turn.keep(biller=chosen.code)
    advance(turn)


def on_account(turn: Turn, text: str) -> None:
    info, recent = _biller(turn), turn.values.get("recent") or []
    t = text.strip()
    if t.isdigit() and 1 <= int(t) <= len(recent) and not info.accepts(t):
        turn.keep(account=recent[int(t) - 1])
        advance(turn)
        return
    # People copy numbers from a bill or a meter with spaces or dashes between groups.
    number = "".join(t.replace("-", " ").split())
    try:
        turn.keep(account=bill_payments.check_account_number(info, number))
    except InvalidInput:
        turn.say(copy.again(copy.bill_account_bad(info.code, _word(info), info.account_number_example)))
        return
    advance(turn)


def pay_it(turn: Turn):
    v = turn.values
    return bill_payments.create(turn.uow, turn.rt, payer=_payer(turn), biller=v["biller"],
                                account_number=v["account"], amount=v["amount"], currency=v["currency"])


def paying(turn: Turn, bp) -> None:
    info = _biller(turn)
    turn.say(copy.bill_started(bp.amount, bp.currency, bp.biller, bp.account_number,
                               info.prepaid and info.category == "electricity", bp.id))


def not_paid(turn: Turn, e: SoxaraError) -> None:
    if isinstance(e, InsufficientFunds):
        currency_ = turn.values["currency"]
        turn.say(copy.bill_insufficient(currency_, turn.balance_of(currency_)))
        turn.say(turn.menu())
    else:
        turn.say(turn.refusal(e))


def _which(turn: Turn) -> str:
    return copy.bill_which([(b.code, b.category) for b in _catalog(turn)])


def _account_question(turn: Turn) -> str:
    info = _biller(turn)
    return copy.bill_account(info.code, _word(info), info.account_number_example, turn.values.get("recent") or [])


def _confirmation(turn: Turn) -> str:
    v, info = turn.values, _biller(turn)
    return copy.bill_confirm(v["amount"], v["currency"], info.code, _word(info), v["account"])


def _pin_question(turn: Turn) -> str:
    v = turn.values
    return copy.bill_pin(v["amount"], v["currency"], v["biller"], v["account"])


biller = flow.add(Step("bill_biller", on_biller, _which))
account = flow.add(Step("bill_account", on_account, _account_question, number=True))
amount = flow.add(steps.amount("bill_amount", copy.BILL_AMOUNT, then=advance))
currency = flow.add(steps.currency("bill_currency", then=advance))
pin = flow.add(steps.pin_then_act("bill_pin", _pin_question, act=pay_it, done=paying, refused=not_paid))
confirm = flow.add(steps.confirm("bill_confirm", _confirmation, pin=pin, cancelled=copy.BILL_CANCELLED))


def begin(turn: Turn, **values) -> None:
    """From the menu (or `start_flow`, with any of biller, account, amount and currency)."""
    turn.go(biller, **values)
    advance(turn)


flow.begin = begin
