"""Everything the bot says, in one place.

Short lines for small screens. Every amount names its currency the Liberian way,
`US$12.50` and `L$1,000.00` (core.amounts.format_amount): in Liberia "$" alone can mean
either dollar. The receipt of an action ends with the id (`Ref tr_…`) a support agent
looks up; ordinary answers (balances, history) show no ids.
"""

from __future__ import annotations

from core import names
from core.amounts import format_amount

METHODS = {"mtn_momo": "MTN MoMo", "orange_money": "Orange Money"}


def money(amount: int, currency: str) -> str:
    return format_amount(amount, currency)


def greeting_name(profile_name: str | None) -> str:
    name = names.fit_to_show(profile_name)
    first = names.fit_to_show(name.split()[0], 30) if name else None  # the first word
    return f", {first}" if first else ""


# --- getting in --------------------------------------------------------------------------

def welcome_new(name: str | None) -> str:
    return (f"Welcome to Soxara{greeting_name(name)}!\n"
            "Hold, send and receive USD and LRD right here in WhatsApp.")


def welcome_back(name: str | None) -> str:
    return f"Welcome back{greeting_name(name)}."


def money_waiting(amount: int, currency: str, sender: str) -> str:
    return f"{sender} sent you {money(amount, currency)}. Log in to claim it."


CODE_SENT = "To log in, reply with the 6-digit code we just sent you."
CODE_PROMPT = "Reply with the 6-digit code we sent you, or NEW for a new code."


def code_wrong(tries_left: int | None) -> str:
    left = f" {tries_left} {'try' if tries_left == 1 else 'tries'} left." if tries_left else ""
    return f"That code is not right.{left} Check the newest code and try again, or reply NEW."


CODE_DEAD = "That code has expired or was tried too often. Reply NEW for a new one."
CODE_RESENT = "We sent you a new code. Reply with it to log in."


def code_waiting(seconds_ago: int) -> str:
    """HI again while a code still works: no new code unless asked for."""
    ago = "just now" if seconds_ago < 60 else f"{_minutes(seconds_ago - seconds_ago % 60)} ago"
    return f"We sent you a code {ago}. Reply with it to log in, or reply NEW for a new one."


def code_rate_limited(seconds: int, *, last_code_works: bool = False) -> str:
    if last_code_works:
        return (f"Too many codes asked for. Reply with the last one we sent (it still works), "
                f"or reply NEW in {_minutes(seconds)}.")
    return f"Too many codes asked for. Try again in {_minutes(seconds)}, then reply NEW."


LOGGED_IN = "You're logged in."


def logged_out_idle(minutes: int) -> str:
    return f"You were logged out after {minutes} minutes without a message."


LOGGED_OUT = "You're logged out. Send HI to log in again."
NOT_LOGGED_IN_CANCEL = "OK. Send HI whenever you want to log in."

# --- PIN ---------------------------------------------------------------------------------

PIN_CHOOSE = ("Choose a 4–6 digit PIN. You'll use it to approve every payment.\n"
              "Never share it, not even with Soxara staff.")
PIN_REPEAT = "Type the same PIN again to confirm it."
PIN_MISMATCH = "Those PINs don't match. Choose your PIN again."
PIN_FORMAT = "A PIN is 4 to 6 digits, numbers only."
PIN_SET = "Your PIN is set."


def pin_already_set(change_pin_number: int) -> str:
    return ("Your account already has a PIN (set in the Soxara app), so this one was not "
            f"saved. Approve payments with that PIN; {change_pin_number} on the menu changes it.")


PIN_NEW = "Type your new 4–6 digit PIN."
PIN_CURRENT_TO_APPROVE = "Now type your current PIN to approve the change."
PIN_CHANGED = "Your PIN is changed."
PIN_UNCHANGED = "Your PIN was not changed."
PIN_NOT_SET = "You need a PIN before you can approve payments."


def pin_wrong(tries_left: int | None) -> str:
    if tries_left is None:
        return "Wrong PIN. Try again, or CANCEL."
    return f"Wrong PIN. {tries_left} {'try' if tries_left == 1 else 'tries'} left, or CANCEL."


def pin_locked(seconds: int | None) -> str:
    when = f" for {_minutes(seconds)}" if seconds else " for a while"
    return f"Your PIN is locked{when} after too many wrong tries. Nothing was moved."


def pin_rejected(reason: str) -> str:
    return f"That PIN can't be used: {reason}. Choose another."


# --- the menu ----------------------------------------------------------------------------

MENU_TITLE = "What would you like to do?"
MENU_HOW = "Reply with a number."
# The menu's lines; their numbers come from the order of the flows' MenuEntry (bot/flows/).
MENU_BALANCE = "Balance"
MENU_SEND = "Send money"
MENU_ADD = "Add money"
MENU_HISTORY = "Recent transactions"
MENU_CLAIM = "Claim money"
MENU_PIN = "Change PIN"
MENU_BILL = "Pay a bill"
MENU_HELP = "Help"


def menu(labels: list[str]) -> str:
    """The menu, its lines numbered from 1 in the order given."""
    lines = [f"{number} {label}" for number, label in enumerate(labels, start=1)]
    return "\n".join([MENU_TITLE, *lines, MENU_HOW])


DIDNT_GET = "Sorry, I didn't get that."


def again(text: str) -> str:
    """A question asked again after an answer it could not take: say how to get out."""
    return f"{text}\nOr reply CANCEL to stop."


def acknowledged(kind: str, logged_in: bool) -> str:
    """The answer at rest to a thank-you, an OK (parse.acknowledgement) or a no."""
    first = {"thanks": "You're welcome!", "no": "OK."}.get(kind, "\N{THUMBS UP SIGN}")
    then = "Reply MENU whenever you need anything." if logged_in else "Send HI whenever you want to log in."
    return f"{first} {then}"


def after_balance(send_number: int, add_number: int) -> str:
    return f"Reply {send_number} to send money or {add_number} to add money."


def after_send(send_number: int) -> str:
    return f"Reply BAL for your balance or {send_number} to send more."


def after_claim(send_number: int) -> str:
    return f"Reply BAL for your balance or {send_number} to send it on."
MEDIA_ONLY = "I can only read text messages."
TIMED_OUT = "That step timed out after 10 minutes, so we started over. Nothing was moved."
NOTHING_TO_CANCEL = "Nothing to cancel."
OOPS = "Sorry, something went wrong on our side. Nothing was moved. Reply MENU to start again."

HELP = ("Soxara help\n"
        "MENU: main menu\n"
        "BAL: your balance\n"
        "SEND 12.50 USD 0881234567: send money\n"
        "CLAIM <code>: claim money sent to you\n"
        "BILL: pay an LEC or LWSC bill\n"
        "CANCEL: stop what you're doing\n"
        "LOGOUT: log out\n"
        "For support, quote the Ref (tr_…, dep_…, bp_…) of the payment.")


def balance(amounts: list[tuple[int, str]]) -> str:
    """The person's money, a line a currency: no ids (those are for receipts)."""
    return "Your balance:\n" + "\n".join(money(amount, cur) for amount, cur in amounts)


def history(rows: list[tuple[str, int, str, str]]) -> str:
    """rows: (date, signed amount, currency, what happened: HISTORY_WHAT), newest first."""
    if not rows:
        return "No transactions yet."
    out = ["Recent transactions:"]
    for day, amount, cur, what in rows:
        sign = "+" if amount > 0 else "-"
        out.append(f"{day}  {sign}{money(abs(amount), cur)}  {what}")
    return "\n".join(out)


# A history line's "what": who the money went to or came from, and the transfer's status
# as it is now (a claimed transfer no longer waits).
HISTORY_WHAT = {
    "sent": "sent to {who}",
    "sent_pending_claim": "sent to {who}, waiting for their claim",
    "sent_claimed": "sent to {who}, claimed",
    "sent_expired": "sent to {who}, not claimed",
    "returned": "back from {who}, not claimed",
    "received": "received from {who}",
    "claimed": "claimed, from {who}",
    "added": "added from {method}",
    "adjustment": "adjustment by Soxara",
    "sandbox_funding": "test money",
    "bill_payment": "{who} bill",
    "bill_refund": "{who} bill, money back",
}


def history_what(what: str, who: str = "", method: str = "") -> str:
    return HISTORY_WHAT.get(what, what.replace("_", " ")).format(who=who, method=METHODS.get(method, method))


# --- amounts, currencies, numbers --------------------------------------------------------

AMOUNT_FORMAT = "Type an amount like 12.50 (a dot for cents)."
AMOUNT_DECIMALS = "Amounts have at most two decimals, like 12.50."
AMOUNT_NOT_POSITIVE = "The amount must be more than zero."
AMOUNT_TOO_LARGE = "That amount is too large."
CURRENCY_PROMPT = "US dollars or Liberian dollars?\n1 US$ (USD)\n2 L$ (LRD)"


def currency_unsupported(word: str) -> str:
    return f"Soxara sends USD or LRD, not {word[:10]}."
NUMBER_BAD = "That doesn't look like a phone number. Type it like 0881234567 or +231881234567."
NUMBER_SOXARA = "That is this chat's own number, not a person's. Type the number of the person to pay."
NUMBER_FOREIGN = "Soxara sends only to Liberian numbers (+231…). Type a Liberian number."
NUMBER_SELF = "That's your own number. Type the number of the person you're paying."
YES_NO = "Reply 1 for YES or 2 for NO."


# --- send money --------------------------------------------------------------------------

SEND_AMOUNT = "How much do you want to send? For example 12.50 USD or 1,000 LRD."


def send_recipient(amount: int, currency: str) -> str:
    return (f"Who gets {money(amount, currency)}? "
            "Type their number, like 0881234567 or +231881234567.")


def send_confirm(amount: int, currency: str, recipient: str) -> str:
    return f"Send {money(amount, currency)} to {recipient}?\n1 YES\n2 NO"


def send_pin(amount: int, currency: str, recipient: str) -> str:
    return f"Type your PIN to send {money(amount, currency)} to {recipient}. (CANCEL to stop)"


def send_done(amount: int, currency: str, recipient: str, transfer_id: str) -> str:
    return f"Sent {money(amount, currency)} to {recipient}.\nRef {transfer_id}"


def send_pending_claim(amount: int, currency: str, recipient: str, window: str, transfer_id: str) -> str:
    """`window`: the claim window as people say it ("7 days"; core.wallets.transfers.claim_window)."""
    return (f"{recipient} isn't on Soxara yet. We sent them a link to claim "
            f"{money(amount, currency)}.\n"
            f"If it isn't claimed within {window}, it comes back to you.\n"
            f"Ref {transfer_id}")


def insufficient(currency: str, balance: int | None) -> str:
    have = f" You have {money(balance, currency)}." if balance is not None else ""
    return f"Not enough {currency} for that.{have} Nothing was sent."


SEND_CANCELLED = "Cancelled. Nothing was sent."
ALREADY_DONE = "That was already done."
# SQLite only: a copy of this approval began and has not finished (or its process died).
ALREADY_UNDER_WAY = "That is already under way. Check BAL before you try again."


# --- add money ---------------------------------------------------------------------------

ADD_AMOUNT = "How much do you want to add? For example 10 USD or 500 LRD."


def add_method(amount: int, currency: str) -> str:
    return f"Add {money(amount, currency)} from:\n1 MTN MoMo\n2 Orange Money"


def add_phone(method: str, own_phone: str) -> str:
    return f"Which {METHODS[method]} number pays?\n1 This number ({own_phone})\nor type another number."


def add_confirm(amount: int, currency: str, method: str, phone: str) -> str:
    return (f"Add {money(amount, currency)} from {METHODS[method]} {phone}?\n"
            "1 YES\n2 NO")


def add_pin(amount: int, currency: str, method: str, phone: str) -> str:
    return (f"Type your PIN to request {money(amount, currency)} from "
            f"{METHODS[method]} {phone}. (CANCEL to stop)")


def add_started(amount: int, currency: str, method: str, phone: str, deposit_id: str) -> str:
    return (f"Approve the {money(amount, currency)} request on {phone} ({METHODS[method]}).\n"
            f"We'll message you when it lands.\nRef {deposit_id}")


ADD_CANCELLED = "Cancelled. Nothing was requested."
METHOD_PROMPT = "Reply 1 for MTN MoMo or 2 for Orange Money."
MOMO_FOREIGN = "Mobile money works with Liberian numbers only (+231…). Type a Liberian number."


# --- pay a bill ------------------------------------------------------------------------

def bill_which(billers: list[tuple[str, str]]) -> str:
    """billers: (code, category) in the catalog's order."""
    lines = [f"{n} {code} {category}" for n, (code, category) in enumerate(billers, start=1)]
    return "\n".join(["Which bill do you want to pay?", *lines])


def bill_which_again(codes: list[str]) -> str:
    return f"Reply with the bill's number or its name ({', '.join(codes)})."


def account_word(prepaid_electricity: bool) -> str:
    return "meter number" if prepaid_electricity else "account number"


def bill_account(biller: str, word: str, example: str, recent: list[str]) -> str:
    """Ask for the account; `recent`: the numbers the person last paid this biller for."""
    ask = f"Type your {biller} {word}. It looks like {example}."
    if not recent:
        return ask
    lines = [f"{n} {number}" for n, number in enumerate(recent, start=1)]
    return "\n".join([f"Which {biller} {word}?", *lines, f"or type another one. It looks like {example}."])


def bill_account_bad(biller: str, word: str, example: str) -> str:
    return f"That isn't a {biller} {word}. It looks like {example}."


BILL_AMOUNT = "How much do you want to pay? For example 20 USD or 1,500 LRD."


def bill_currency_not_taken(biller: str, currencies: list[str]) -> str:
    return f"{biller} takes {' or '.join(currencies)} only. How much, in {' or '.join(currencies)}?"


def bill_confirm(amount: int, currency: str, biller: str, word: str, account: str) -> str:
    return f"Pay {money(amount, currency)} to {biller} for {word} {account}?\n1 YES\n2 NO"


def bill_pin(amount: int, currency: str, biller: str, account: str) -> str:
    return f"Type your PIN to pay {money(amount, currency)} to {biller} for {account}. (CANCEL to stop)"


def bill_started(amount: int, currency: str, biller: str, account: str, token_coming: bool,
                 bill_id: str) -> str:
    then = (f"We'll send your token in its own message as soon as {biller} gives it."
            if token_coming else f"We'll message you when {biller} confirms.")
    return f"Paying {money(amount, currency)} to {biller} for {account}.\n{then}\nRef {bill_id}"


def bill_insufficient(currency: str, balance: int) -> str:
    return f"Not enough {currency} for that. You have {money(balance, currency)}. Nothing was paid."


BILL_CANCELLED = "Cancelled. Nothing was paid."


# --- claim -------------------------------------------------------------------------------

CLAIM_ASK = "Type the claim code from the message you got, like CLAIM K7M2PQ9X."
CLAIM_NOT_FOUND = "No money with that code was sent to your number. Check the code and try again."
CLAIM_ALREADY = "That money was already claimed."
CLAIM_EXPIRED = "That claim has expired; the money went back to the sender."


def claim_offer(items: list[tuple[int, str, str]]) -> str:
    """items: (amount, currency, sender) waiting for this number."""
    lines = ["Money is waiting for you:"]
    for amount, cur, sender in items:
        lines.append(f"{money(amount, cur)} from {sender}")
    lines.append(("1 Claim it now" if len(items) == 1 else "1 Claim all now") + "\n2 Later")
    return "\n".join(lines)


def claim_later(claim_number: int) -> str:
    return f"OK. Claim it any time: reply {claim_number} at the menu."


# --- failures from core ------------------------------------------------------------------

def refused(message: str) -> str:
    """A refusal core explained in words (a closed claim, a rail that said no…)."""
    text = (message or "").strip().rstrip(".")
    return (text[:1].upper() + text[1:] + ". Nothing was moved.") if text else OOPS


UNAVAILABLE = "That service isn't answering right now. Nothing was moved. Please try again soon."


def _minutes(seconds: int | None) -> str:
    """A wait as people say it: "14 minutes", "2 hours" (a PIN lockout can last a day)."""
    if not seconds:
        return "a few minutes"
    m = max(1, (int(seconds) + 59) // 60)
    if m > 90:
        h = (m + 59) // 60
        return f"{h} hours"
    return f"{m} minute{'s' if m != 1 else ''}"


# --- payment requests (a merchant asks a person to pay from their wallet) ---------------------

MENU_APPROVALS = "Payment requests"
APPROVALS_NONE = "No payment requests are waiting for you."
APPROVALS_CHOOSE = "Reply with the number of the request to answer."


def _for(description: str | None) -> str:
    return f" for {description}" if description else ""


def approval_confirm(amount: str, merchant: str, description: str | None) -> str:
    """`amount` already formatted (`US$12.50`)."""
    return f"Pay {amount} to {merchant}{_for(description)}?\n1 YES\n2 NO"


def approval_pin(amount: str, merchant: str) -> str:
    return f"Type your PIN to pay {amount} to {merchant}. (CANCEL to stop)"


def approval_paid(amount: str, merchant: str, payment_id: str) -> str:
    return f"Paid {amount} to {merchant}.\nRef {payment_id}"


def approval_declined(merchant: str) -> str:
    return f"Declined. Nothing was paid, and {merchant} was told."


def approval_later(minutes: int) -> str:
    return (f"Not paid yet. You can still answer it for up to {minutes} minutes: "
            f"choose {MENU_APPROVALS} from the menu.")


def approval_short(currency: str, balance: int) -> str:
    return (f"Not enough {currency} to pay that. You have {money(balance, currency)}. Nothing was paid; "
            f"the merchant was told.")


APPROVAL_GONE = "That payment request is no longer waiting (answered, canceled or expired). Nothing was paid."


def approval_list(lines: list[str]) -> str:
    return "\n".join(["Payment requests waiting for you:",
                      *(f"{n} {line}" for n, line in enumerate(lines, start=1)), APPROVALS_CHOOSE])


def approval_waiting(amount: str, merchant: str, description: str | None) -> str:
    """To a phone not logged in in the chat: what is asked, and how to answer."""
    return (f"{merchant} asks you to pay {amount}{_for(description)} from your Soxara wallet. "
            f"Reply HI to log in, then choose {MENU_APPROVALS} to answer it.")
