"""The hosted pay page's link (`/pay/{id}?client_secret=…`, served by api/pay) and its
WhatsApp message, sent when the merchant asks for it on create (`send_link`).

The link carries the client secret, which exists in clear only in the create request
(only its keyed hash is kept): so the link can be sent only then, in the create's own
transaction. It is a bearer secret for paying this one payment: the stored transcript of
the message keeps it masked, and log lines never print it (core.tracing's record factory
redacts client secrets).
"""

from __future__ import annotations

import urllib.parse

from core.amounts import format_amount
from core.db import UnitOfWork
from core.messaging import outbox
from core.payments.payments import Payment, merchant_name

PAGE_PATH = "/pay/"


def pay_url(settings, payment_id: str, client_secret: str) -> str:
    """The page where the customer pays, under SOXARA_PUBLIC_URL."""
    query = urllib.parse.urlencode({"client_secret": client_secret})
    return f"{settings.public_url}{PAGE_PATH}{payment_id}?{query}"


def send_pay_link(uow: UnitOfWork, rt, p: Payment, client_secret: str) -> None:
    """Send the customer (`customer_phone`) the page's link by WhatsApp once this
    transaction commits: who asks, how much, for what."""
    if not p.customer_phone:
        raise ValueError("a pay link goes to the payment's customer_phone")
    what = f" for {p.description[:100]}" if p.description else ""
    outbox.send_whatsapp(uow, rt, p.customer_phone,
                         f"{merchant_name(uow, p)} asks you to pay {format_amount(p.amount, p.currency)}{what}. "
                         f"Pay here: {pay_url(rt.settings, p.id, client_secret)}",
                         sensitive=[client_secret])
