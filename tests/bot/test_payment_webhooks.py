"""Issue 14's proof end to end: a merchant asks for a wallet payment over the HTTP API, the
customer approves it in the chat (the signed WhatsApp webhook) with the PIN, and the
merchant's own receiver (docs/webhooks.md's example, on loopback) verifies and handles
`payment.succeeded`, then both refunds' events; the ledger check holds throughout."""

from __future__ import annotations

from tests.api import test_webhook_receiver
from tests.bot.conftest import PIN, balance
from tests.bot.test_payment_approvals import A, ask, merchant_balance, shop, status

example = test_webhook_receiver.example  # the documented receiver, serving on 127.0.0.1
__all__ = ["shop"]


def test_the_merchants_receiver_hears_the_payment_approved_in_the_chat_and_its_refunds(
        person, shop, runtime, example):
    r = shop.post("/v1/webhook-endpoints", {"url": example["url"], "events": ["*"]})
    assert r.status_code == 201, r.get_json()
    example["SECRETS"] = [r.get_json()["data"]["signing_secret"]]

    a = person(A, usd=50_00)
    pid = ask(shop, A, amount=12_50, description="2 baskets")
    assert "Type your PIN" in a.says("1")
    assert "Paid US$12.50 to Kpelle Crafts" in a.says(PIN)
    assert status(shop, pid) == ("succeeded", None)

    heard = [(e["type"], e["data"]["object"]["id"]) for e in example["handled"]]
    assert heard == [("payment.created", pid), ("payment.requires_action", pid), ("payment.succeeded", pid)]
    paid = example["handled"][-1]["data"]["object"]
    assert (paid["amount"], paid["fee"], paid["net"], paid["status"]) == (12_50, 13, 12_37, "succeeded")

    part = shop.post("/v1/refunds", {"payment": pid, "amount": 500, "reason": "one basket was broken"})
    rest = shop.post("/v1/refunds", {"payment": pid})
    assert (part.status_code, rest.status_code) == (201, 201)
    refunds = [part.get_json()["data"]["id"], rest.get_json()["data"]["id"]]
    assert [(e["type"], e["data"]["object"]["id"]) for e in example["handled"][3:]] == [
        ("refund.created", refunds[0]), ("refund.succeeded", refunds[0]),
        ("refund.created", refunds[1]), ("refund.succeeded", refunds[1])]
    # every delivery verified by the receiver (a forged or stale one is answered 400 and
    # never handled), each event handled once, no request more than the events
    assert example["requests"] == len(example["handled"]) == 7
    assert len({e["id"] for e in example["handled"]}) == 7
    assert balance(runtime, A) == 50_00 and merchant_balance(runtime, shop) == 0  # the ledger check runs here
