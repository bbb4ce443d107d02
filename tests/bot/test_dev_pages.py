"""Sandbox pages: the chat page, its signing helper and the outbox; absent in production."""

from __future__ import annotations

import pytest

from core.config import Settings

A = "+231881234567"


def test_dev_messages_lists_what_was_sent_oldest_first(client, phone):
    phone(A, "Musu").send("HI")
    for to in (A, "%2B231881234567", "231881234567", "0881234567"):
        r = client.get(f"/dev/messages?to={to}")
        assert r.status_code == 200, to
        body = r.get_json()
        assert body["success"] is True
        items = body["data"]["items"]
        assert [set(i) for i in items] == [{"id", "to", "body", "created_at"}] * 3
        assert items[0]["body"].startswith("Welcome to Soxara")
        assert "Your Soxara code is" in items[1]["body"] and "••••" not in items[1]["body"]
        assert all(i["to"] == A and i["id"].startswith("msg_") and i["created_at"].endswith("Z")
                   for i in items)
        assert [i["created_at"] for i in items] == sorted(i["created_at"] for i in items)


def test_dev_messages_lists_all_of_a_long_chat(client, runtime):
    from core.messaging import outbox

    with runtime.uow() as uow:
        for i in range(250):
            outbox.send_whatsapp(uow, runtime, "+231886123456", f"message {i}")
        uow.commit()
    items = client.get("/dev/messages?to=%2B231886123456").get_json()["data"]["items"]
    assert [m["body"] for m in items] == [f"message {i}" for i in range(250)]


def test_dev_messages_with_a_bad_phone(client):
    r = client.get("/dev/messages?to=nonsense")
    assert r.status_code == 422
    assert r.get_json()["error"]["code"] == "INVALID_PHONE_NUMBER"
    assert client.get("/dev/messages").status_code == 422


def test_dev_messages_for_a_quiet_phone_is_empty(client):
    r = client.get("/dev/messages?to=%2B231886123456")
    assert r.get_json() == {"success": True, "data": {"items": []}}


def test_chat_page_is_plain_html(client):
    r = client.get("/dev/whatsapp")
    assert r.status_code == 200 and r.mimetype == "text/html"
    html = r.data.decode()
    assert "/dev/whatsapp/sign" in html and "/dev/messages" in html and "<script>" in html


def test_the_signing_helper_signs_what_the_webhook_accepts(client, runtime):
    r = client.post("/dev/whatsapp/sign", json={"phone": "0881234567", "body": "HI",
                                                "profile_name": "Musu"})
    assert r.status_code == 200
    d = r.get_json()["data"]
    assert d["form"]["From"] == f"whatsapp:{A}" and d["form"]["Body"] == "HI"
    w = client.post(d["url"], data=d["form"], headers={"X-Twilio-Signature": d["signature"]})
    assert w.status_code == 200
    # … and only that form: change the body and the signature no longer holds.
    forged = client.post(d["url"], data={**d["form"], "Body": "BAL"},
                         headers={"X-Twilio-Signature": d["signature"]})
    assert forged.status_code == 403


@pytest.mark.parametrize("typed", ["0886100077", "088 610 0077", "231886100077", "+231886100077",
                                   "%2B231886100077"])
def test_the_page_reads_a_phone_as_the_bot_does(client, typed):
    """The chat page asks the server what number a person typed (core.phones' local rule),
    so its phone box takes every form the bot takes."""
    r = client.get(f"/dev/whatsapp/phone?number={typed}")
    assert r.status_code == 200 and r.get_json() == {"success": True, "data": {"phone": "+231886100077"}}


def test_the_page_is_told_plainly_when_a_phone_is_not_one(client):
    r = client.get("/dev/whatsapp/phone?number=12")
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "INVALID_PHONE_NUMBER"


def test_the_chat_page_opens_on_a_demo_phone(client):
    from bot.demo import DEMO_USERS

    html = client.get("/dev/whatsapp").data.decode()
    assert f'value="{DEMO_USERS[0][0]}"' in html
    assert "A pretend WhatsApp for trying Soxara locally; nothing is sent." in html


def test_the_signing_helper_refuses_bad_input(client):
    assert client.post("/dev/whatsapp/sign", json={"phone": "x", "body": "HI"}).status_code == 422
    assert client.post("/dev/whatsapp/sign", json={"phone": A, "body": 5}).status_code == 422
    assert client.post("/dev/whatsapp/sign", json={"phone": A, "body": "x" * 5000}).status_code == 422


@pytest.fixture
def production_client():
    from api.app import create_app

    settings = Settings(env="production", secret_key="s" * 40, twilio_auth_token="t" * 32,
                        database_url="postgresql://postgres@127.0.0.1:1/never-connected",
                        redis_url="redis://127.0.0.1:1/0", public_url="https://soxara.example",
                        twilio_account_sid="AC" + "0" * 32)
    app = create_app(settings)
    return app.test_client()


@pytest.mark.parametrize("method, path", [
    ("GET", "/dev/whatsapp"), ("GET", "/dev/messages?to=%2B231881234567"),
    ("POST", "/dev/whatsapp/sign"), ("GET", "/dev/whatsapp/phone?number=0886100077"),
])
def test_dev_pages_do_not_exist_in_production(production_client, method, path):
    r = production_client.open(path, method=method, json={} if method == "POST" else None)
    assert r.status_code == 404
    assert r.get_json()["error"]["code"] == "NOT_FOUND"


def test_the_webhook_exists_in_production(production_client):
    assert production_client.post("/whatsapp/webhook", data={"Body": "HI"}).status_code == 403
