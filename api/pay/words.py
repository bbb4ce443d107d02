"""Every sentence the pay page says, in the plain words a customer on a cheap phone reads.

A failed try is told by its reason code (core/payments, core/rails): the customer reads
what happened and what to do, never a code.
"""

from __future__ import annotations

METHOD_NAMES = {"soxara_wallet": "Soxara wallet", "mtn_momo": "MTN MoMo", "orange_money": "Orange Money",
                "card": "Card"}

TEST_MODE = "Test payment: no real money moves."
NOT_FOUND_TITLE = "Payment not found"
NOT_FOUND = ("This payment link is not valid. Check that you opened the whole link you were sent, "
             "or ask the shop for a new one.")
FORM_EXPIRED_TITLE = "Open the payment again"
OPEN_AGAIN = "Open the payment"
BAD_REQUEST = "This request could not be read. Open the payment link again."
FORM_EXPIRED = "This form was not sent from this payment's page. Open the payment again and pay from there."
UNAVAILABLE = "{method} is not available right now. Pay another way, or try again later."
BUSY = "We could not take your payment just now. Nothing was taken. Try again in a moment."

PHONE_WALLET = "Your WhatsApp number"
PHONE_MOMO = "Your {method} number"
HINT_WALLET = "We send a request to your WhatsApp. Approve it there with your Soxara PIN."
HINT_MOMO = "{method} asks you to approve on your phone."
HINT_CARD = "Test cards only, such as 4242 4242 4242 4242. The number is never kept."

CHOOSE_METHOD = "Choose how to pay."
NEED_PHONE = "Type your phone number, such as 0886 123 456."
BAD_PHONE = "That is not a phone number. Type it like 0886 123 456."
NEED_CARD = "Type the card number, its expiry (MM/YY) and the 3 or 4 digit code on the back."
BAD_CARD_NUMBER = "Type the card number: 12 to 19 digits."
BAD_EXPIRY = "Type the expiry as MM/YY, such as 12/29."
BAD_CVC = "Type the 3 or 4 digit code on the back of the card."
WALLET_SHORT = "Your Soxara wallet holds too little for this payment. Add money, or pay another way."

WAITING_WALLET_TITLE = "Check WhatsApp"
WAITING_WALLET = ("We sent a payment request to {phone} on WhatsApp. Open it and approve with your "
                  "Soxara PIN. If you are not logged in there, reply HI first.")
WAITING_MOMO_TITLE = "Approve on your phone"
WAITING_MOMO = "{method} is asking {phone} to approve {amount}. Follow the prompt on that phone."
PROCESSING_TITLE = "Processing"
PROCESSING = "Your payment is being processed."
CARD_CHECK_TITLE = "Your card asks for an extra check"
CARD_CHECK = ("Your bank wants to confirm this payment. This is a test card: choose how the check "
              "ends. Nothing is taken unless it is completed.")
# A test card's 3-D Secure step: the form's `outcome`, and its button.
AUTHENTICATE_OUTCOMES = {"complete": "Complete authentication", "fail": "Fail authentication"}
UPDATES_ITSELF = "This page updates by itself."

PAID_TITLE = "Paid"
PAID = "{amount} paid to {merchant}."
REFUNDED = "{amount} of it was refunded."
FAILED_TITLE = "Payment failed"
NOTHING_TAKEN = "Nothing was taken."
ASK_AGAIN = "To try again, ask {merchant} for a new payment link."
CANCELED_TITLE = "Payment canceled"
CANCELED = "{merchant} canceled this payment. Nothing was taken."
EXPIRED_TITLE = "Payment request expired"
TRY_AGAIN = "You can pay now."

# Why a try did not go through (last_payment_error's code, or a failed payment's).
REASONS = {
    "customer_declined": "You declined the request in WhatsApp.",
    "approval_expired": "The request in WhatsApp was not answered in time.",
    "INSUFFICIENT_FUNDS": "The account had too little money.",
    "user_rejected": "The request was turned down on the phone.",
    "timeout": "The mobile money network did not answer in time.",
    "rail_unavailable": "The mobile money network was not available.",
    "generic_decline": "Your card was declined.",
    "insufficient_funds": "Your card has too little money.",
    "expired_card": "Your card has expired.",
    "incorrect_number": "The card number is not valid.",
    "invalid_expiry_month": "The card's expiry month is not valid.",
    "invalid_cvc": "The card's security code is not valid.",
    "charge_incomplete": "The card could not be charged.",
    "authentication_expired": "Your bank's extra check was not completed in time.",
    "authentication_failed": "Your bank's extra check failed.",
}
# Reasons that are a time running out: the page's headline says "expired".
EXPIRED = frozenset({"approval_expired", "authentication_expired", "timeout"})
REASON_UNKNOWN = "The payment did not go through."


def reason(code: str | None) -> str:
    return REASONS.get(code or "", REASON_UNKNOWN)
