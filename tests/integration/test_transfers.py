"""Transfers and viral claims, through the core services."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from core.db import utcnow
from core.errors import InsufficientFunds, InvalidInput, InvalidState, NotFound, Refused
from core.identity import users
from core.wallets import claims, ledger, sandbox, transfers, wallets
from workers import transfers as transfer_sweeps

ALICE, BOB, NEWBIE, MALLORY = "+231881000001", "+231881000002", "+231881000009", "+231881000666"


def _balance(uow, phone, currency="USD", livemode=False):
    u = users.find_by_phone(uow, phone)
    return wallets.wallet_for(uow, wallets.USER, u.id, currency, livemode).balance


def _sent_to(runtime, phone, *, as_received=True) -> list[str]:
    """What the phone received (as_received) or what the transcript keeps."""
    from core.messaging import outbox

    key = runtime.secret_key if as_received else None
    with runtime.uow() as uow:
        return [m.body for m in outbox.outbox_for(uow, phone, limit=50, secret_key=key)]


@pytest.fixture
def alice(runtime):
    with runtime.uow() as uow:
        u, _ = sandbox.make_buyer(uow, ALICE)
        users.get_or_create(uow, BOB)
        uow.commit()
    return transfers.Party("user", u.id, False)


def test_to_a_user_succeeds_at_once(runtime, alice):
    with runtime.uow() as uow:
        t = transfers.send(uow, runtime, sender=alice, amount=1250, currency="USD", to_phone=BOB)
        uow.commit()
    assert t.status == "succeeded" and t.recipient_user_id
    with runtime.uow() as uow:
        assert _balance(uow, ALICE) == 100000 - 1250 and _balance(uow, BOB) == 1250
        assert ledger.check(uow) == []
        from core.events.events import Event

        assert [e.type for e in uow.session.query(Event).order_by(Event.id)] == ["transfer.created", "transfer.succeeded"]
    assert any("US$12.50" in b and t.id in b for b in _sent_to(runtime, BOB))


def test_more_than_the_balance_moves_nothing(runtime, alice):
    with runtime.uow() as uow, pytest.raises(InsufficientFunds):
        transfers.send(uow, runtime, sender=alice, amount=100001, currency="USD", to_phone=BOB)
    with runtime.uow() as uow:
        assert _balance(uow, ALICE) == 100000 and _balance(uow, BOB) == 0
        assert uow.session.query(transfers.Transfer).count() == 0


def test_sending_to_yourself_is_refused(runtime, alice):
    with runtime.uow() as uow, pytest.raises(InvalidInput):
        transfers.send(uow, runtime, sender=alice, amount=100, currency="USD", to_phone=ALICE)


def test_sending_to_the_bots_own_number_is_refused(runtime, alice):
    """Nobody can log in as it: the money would wait out the claim window for nothing."""
    with runtime.uow() as uow, pytest.raises(InvalidInput) as e:
        transfers.send(uow, runtime, sender=alice, amount=100, currency="USD",
                       to_phone=runtime.settings.whatsapp_number)
    assert e.value.details == {"field": "to_phone_number"}
    with runtime.uow() as uow:
        assert _balance(uow, ALICE) == 100000


def _pending(runtime, sender, amount=500, now=None):
    with runtime.uow() as uow:
        t = transfers.send(uow, runtime, sender=sender, amount=amount, currency="USD", to_phone=NEWBIE, now=now)
        uow.commit()
    body = _sent_to(runtime, NEWBIE)[-1]
    code = body.split("CLAIM ")[-1].split(")")[0].strip()
    return t, code, body


def test_new_number_gets_a_claim_link_and_claims(runtime, alice):
    t, code, body = _pending(runtime, alice)
    assert t.status == "pending_claim"
    assert "https://wa.me/231770000000?text=CLAIM%20" + code in body and t.id in body
    with runtime.uow() as uow:
        assert _balance(uow, ALICE) == 99500
        held = wallets.system_account(uow, "claims_held", "USD", False)
        assert held.balance == 500
        newbie = users.get_or_create(uow, NEWBIE)
        uow.commit()
    with runtime.uow() as uow:
        done = claims.claim(uow, runtime, user_id=newbie.id, livemode=False, claim_code=code.lower())
        uow.commit()
    assert done.status == "claimed"
    with runtime.uow() as uow:
        assert _balance(uow, NEWBIE) == 500
        assert wallets.system_account(uow, "claims_held", "USD", False).balance == 0
        assert ledger.check(uow) == []
    with runtime.uow() as uow, pytest.raises(InvalidState):
        claims.claim(uow, runtime, user_id=newbie.id, livemode=False, claim_code=code)


def test_the_transcript_keeps_the_claim_code_masked(runtime, alice):
    _, code, _ = _pending(runtime, alice)
    kept = _sent_to(runtime, NEWBIE, as_received=False)[-1]
    assert code not in kept and "CLAIM" in kept


def test_the_logged_in_recipient_claims_by_id(runtime, alice):
    t, _, _ = _pending(runtime, alice)
    with runtime.uow() as uow:
        mallory = users.get_or_create(uow, MALLORY)
        newbie = users.get_or_create(uow, NEWBIE)
        uow.commit()
    with runtime.uow() as uow, pytest.raises(NotFound):
        claims.claim_for_recipient(uow, runtime, user_id=mallory.id, livemode=False, transfer_id=t.id)
    with runtime.uow() as uow:
        assert [p.id for p in claims.pending_claims_for(uow, NEWBIE)] == [t.id]
        claims.claim_for_recipient(uow, runtime, user_id=newbie.id, livemode=False, transfer_id=t.id)
        uow.commit()
    with runtime.uow() as uow:
        assert _balance(uow, NEWBIE) == 500 and claims.pending_claims_for(uow, NEWBIE) == []
    with runtime.uow() as uow, pytest.raises(InvalidState):
        claims.claim_for_recipient(uow, runtime, user_id=newbie.id, livemode=False, transfer_id=t.id)


def test_only_the_phone_it_was_sent_to_can_claim(runtime, alice):
    _, code, _ = _pending(runtime, alice)
    with runtime.uow() as uow:
        mallory = users.get_or_create(uow, MALLORY)
        uow.commit()
    for attempt in (code, "WRONGCOD", ""):
        with runtime.uow() as uow, pytest.raises(NotFound):
            claims.claim(uow, runtime, user_id=mallory.id, livemode=False, claim_code=attempt)
    with runtime.uow() as uow:
        assert _balance(uow, MALLORY) == 0


def test_unclaimed_money_goes_back_at_the_end_of_the_window(runtime, alice):
    t, code, _ = _pending(runtime, alice)
    later = utcnow() + timedelta(hours=runtime.settings.claim_window_hours, seconds=1)
    with runtime.uow() as uow:
        newbie = users.get_or_create(uow, NEWBIE)
        uow.commit()
    with runtime.uow() as uow, pytest.raises(Refused) as e:
        claims.claim(uow, runtime, user_id=newbie.id, livemode=False, claim_code=code, now=later)
    assert e.value.code == "CLAIM_EXPIRED"
    # Test mode would auto-claim; expiry first here, as the window passed.
    assert transfer_sweeps.expire_due(runtime, later) == 1
    assert transfer_sweeps.expire_due(runtime, later) == 0, "a second sweep returns nothing twice"
    with runtime.uow() as uow:
        assert uow.session.get(transfers.Transfer, t.id).status == "expired"
        assert _balance(uow, ALICE) == 100000
        assert ledger.check(uow) == []
    with runtime.uow() as uow, pytest.raises(Refused):
        claims.claim(uow, runtime, user_id=newbie.id, livemode=False, claim_code=code)


def test_a_return_repeated_cannot_take_claims_held_below_zero(runtime, alice):
    """Claims held is other people's money: the database refuses an entry that would take
    it below zero, so a transfer returned twice (a sweep whose status check failed)
    cannot make money out of nothing.

    Guards SYSTEM_ACCOUNTS["claims_held"] = False (core/wallets/wallets.py): were it allowed to
    go negative, the second return would go through and ALICE get her 500 back twice."""
    t, _, _ = _pending(runtime, alice)
    later = utcnow() + timedelta(hours=runtime.settings.claim_window_hours, seconds=1)
    assert transfer_sweeps.expire_due(runtime, later) == 1
    with runtime.uow() as uow, pytest.raises(InsufficientFunds):  # at the commit on PostgreSQL
        held = wallets.system_account(uow, "claims_held", "USD", False)
        ledger.post(uow, kind="claim_return", obj_type="transfer", obj_id=t.id, livemode=False,
                    currency="USD", legs=[(held.id, -t.amount), (t.sender_wallet_id, t.amount)])
        uow.commit()
    with runtime.uow() as uow:
        assert wallets.system_account(uow, "claims_held", "USD", False).balance == 0
        assert _balance(uow, ALICE) == 100000
        assert ledger.check(uow) == []


@pytest.fixture
def shop(runtime):
    """A merchant sending with its test key, its test USD wallet funded with $50."""
    from core.merchants import merchants
    from core.wallets import adjustments

    with runtime.uow() as uow:
        m = merchants.create_merchant(uow, "Test Shop")
        w = wallets.wallet_for(uow, wallets.MERCHANT, m.id, "USD", False)
        uow.session.flush()
        adjustments.adjust(uow, wallet_id=w.id, amount=5000, reason="float")
        uow.commit()
    return transfers.Party("merchant", m.id, False)


def test_a_merchants_test_transfer_claims_itself(runtime, shop):
    """The docs' 10 s auto-claim, for integrators waiting for `transfer.claimed`."""
    t, _, _ = _pending(runtime, shop)
    assert t.auto_claim_at is not None
    assert transfer_sweeps.auto_claim_due(runtime, utcnow()) == 0
    assert transfer_sweeps.auto_claim_due(runtime, utcnow() + timedelta(seconds=11)) == 1
    with runtime.uow() as uow:
        assert uow.session.get(transfers.Transfer, t.id).status == "claimed"
        assert _balance(uow, NEWBIE) == 500


def test_money_a_person_sends_in_test_mode_waits_for_a_real_claim(runtime, alice):
    """A newcomer trying the sandbox must find the money still there to claim by hand."""
    from workers import scheduled

    t, code, _ = _pending(runtime, alice)
    assert t.auto_claim_at is None
    assert transfer_sweeps.auto_claim_due(runtime, utcnow() + timedelta(days=1)) == 0
    scheduled.tick(runtime, utcnow() + timedelta(minutes=5))
    with runtime.uow() as uow:
        assert uow.session.get(transfers.Transfer, t.id).status == "pending_claim"
        newbie = users.get_or_create(uow, NEWBIE)
        uow.commit()
    with runtime.uow() as uow:
        assert claims.claim(uow, runtime, user_id=newbie.id, livemode=False, claim_code=code).status == "claimed"
        uow.commit()


def _live_send_to_newbie(runtime, amount: int, currency: str, funds: int, now=None):
    """ALICE, given `funds` of live money by an operator, sends `amount` to NEWBIE (at `now`)."""
    from core.wallets import adjustments

    with runtime.uow() as uow:
        u = users.get_or_create(uow, ALICE)
        w = wallets.wallet_for(uow, wallets.USER, u.id, currency, True)
        adjustments.adjust(uow, wallet_id=w.id, amount=funds, reason="test credit")
        t = transfers.send(uow, runtime, sender=transfers.Party("user", u.id, True), amount=amount,
                           currency=currency, to_phone=NEWBIE, now=now)
        uow.commit()
    return t


def test_the_schedulers_tick_returns_unclaimed_money_and_completes_test_claims(runtime, alice, shop):
    """The sweeps' own tests call them directly; this one runs the scheduler's tick, as the
    in-process runner and the RQ clock do.

    Guards SWEEPS (workers/scheduled.py): without the claim expiry, a live transfer past
    its window stays held forever; without the auto-claim, a test one never completes."""
    from workers import scheduled

    window = timedelta(hours=runtime.settings.claim_window_hours)
    overdue = _live_send_to_newbie(runtime, 400, "USD", funds=1000, now=utcnow() - window - timedelta(seconds=1))
    auto, _, _ = _pending(runtime, shop, now=utcnow() - transfers.TEST_AUTO_CLAIM_AFTER - timedelta(seconds=1))
    scheduled.tick(runtime)
    with runtime.uow() as uow:
        assert uow.session.get(transfers.Transfer, overdue.id).status == "expired"
        assert _balance(uow, ALICE, livemode=True) == 1000
        assert uow.session.get(transfers.Transfer, auto.id).status == "claimed"
        assert _balance(uow, NEWBIE) == 500
        assert ledger.check(uow) == []


def test_live_mode_never_auto_claims(runtime):
    t = _live_send_to_newbie(runtime, 100, "LRD", funds=10000)
    assert t.auto_claim_at is None
    assert transfer_sweeps.auto_claim_due(runtime, utcnow() + timedelta(days=1)) == 0


def test_a_claim_only_finds_transfers_of_the_mode_the_person_acts_in(runtime):
    """Live money waits in live claims-held and lands in a live wallet: someone acting in
    test mode (a development deployment's users) sees no such transfer, and the money
    stays held, rather than landing in a wallet they never see."""
    t = _live_send_to_newbie(runtime, 400, "USD", funds=1000)
    with runtime.uow() as uow:
        newbie = users.get_or_create(uow, NEWBIE)
        uow.commit()
    code = _sent_to(runtime, NEWBIE)[-1].split("CLAIM ")[-1].split(")")[0].strip()
    for attempt in (lambda uow: claims.claim(uow, runtime, user_id=newbie.id, livemode=False, claim_code=code),
                    lambda uow: claims.claim_for_recipient(uow, runtime, user_id=newbie.id, livemode=False,
                                                           transfer_id=t.id)):
        with runtime.uow() as uow, pytest.raises(NotFound):
            attempt(uow)
    with runtime.uow() as uow:
        assert wallets.system_account(uow, "claims_held", "USD", True).balance == 400
        assert claims.pending_claims_for(uow, NEWBIE, livemode=False) == []
        done = claims.claim(uow, runtime, user_id=newbie.id, livemode=True, claim_code=code)
        uow.commit()
    assert done.status == "claimed"
    with runtime.uow() as uow:
        assert _balance(uow, NEWBIE, livemode=True) == 400 and _balance(uow, NEWBIE) == 0
        assert ledger.check(uow) == []


def test_merchant_payout(runtime):
    from core.wallets import adjustments
    from tests.conftest import create_merchant

    mid, _ = create_merchant(runtime)
    with runtime.uow() as uow:
        w = wallets.wallet_for(uow, wallets.MERCHANT, mid, "USD", False)
        adjustments.adjust(uow, wallet_id=w.id, amount=5000, reason="float")
        users.get_or_create(uow, BOB)
        t = transfers.send(uow, runtime, sender=transfers.Party("merchant", mid, False), amount=2000,
                           currency="USD", to_phone=BOB)
        uow.commit()
    assert t.status == "succeeded"
    with runtime.uow() as uow:
        from core.events.events import Event

        assert {e.merchant_id for e in uow.session.query(Event)} == {mid}


@pytest.mark.postgres
def test_two_overdrawing_transfers_at_once_exactly_one_wins(pg_runtime):
    rt = pg_runtime
    from core.wallets import adjustments

    with rt.uow() as uow:
        a = users.get_or_create(uow, ALICE)
        users.get_or_create(uow, BOB)
        users.get_or_create(uow, MALLORY)
        w = wallets.wallet_for(uow, wallets.USER, a.id, "USD", False)
        adjustments.adjust(uow, wallet_id=w.id, amount=1000, reason="seed")
        uow.commit()
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def send(to):
        with rt.uow() as uow:
            barrier.wait()
            try:
                transfers.send(uow, rt, sender=transfers.Party("user", a.id, False), amount=700,
                               currency="USD", to_phone=to)
                uow.commit()
                outcomes.append("ok")
            except InsufficientFunds:
                outcomes.append("insufficient")

    threads = [threading.Thread(target=send, args=(p,)) for p in (BOB, MALLORY)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["insufficient", "ok"]
    with rt.uow() as uow:
        assert _balance(uow, ALICE) == 300
        assert _balance(uow, BOB) + _balance(uow, MALLORY) == 700
        assert ledger.check(uow) == []


@pytest.mark.postgres
def test_opposing_transfers_at_once_never_deadlock(pg_runtime):
    """ALICE and BOB send to each other from many threads at once: every transfer goes
    through, none meets a deadlock, and both balances are exact to the cent.

    Guards ledger.post's lock order (`sorted(merged)`): moving the balances in the legs'
    order instead locks the sender first, so A->B and B->A each hold one wallet and wait
    for the other, and PostgreSQL breaks the cycle by failing one of them."""
    from sqlalchemy.exc import OperationalError

    from core.wallets import adjustments
    from tests.conftest import at_once

    rt, threads, rounds, start = pg_runtime, 8, 25, 100_000
    with rt.uow() as uow:
        people = [users.get_or_create(uow, phone) for phone in (ALICE, BOB)]
        for p in people:
            adjustments.adjust(uow, wallet_id=wallets.wallet_for(uow, wallets.USER, p.id, "USD", False).id,
                               amount=start, reason="seed")
        uow.commit()

    failed = threading.Event()  # the first failure stops every thread: a deadlock costs 1 s

    def trade(i: int) -> tuple[int, list[str]]:
        # Even threads send ALICE -> BOB, odd ones BOB -> ALICE; a distinct amount per
        # thread, so the final balances show any transfer lost or run twice.
        sender, to = (people[0], BOB) if i % 2 == 0 else (people[1], ALICE)
        sent, errors = 0, []
        for _ in range(rounds):
            if failed.is_set():
                break
            try:
                with rt.uow() as uow:
                    transfers.send(uow, rt, sender=transfers.Party("user", sender.id, False),
                                   amount=100 + i, currency="USD", to_phone=to)
                    uow.commit()
                sent += 1
            except OperationalError as e:  # psycopg2's DeadlockDetected, among others
                errors.append(type(e.orig).__name__)
                failed.set()
        return sent, errors

    results = at_once(threads, trade)
    errors = [e for _, errs in results for e in errs]
    assert not errors, f"{len(errors)} transfers failed: {sorted(set(errors))}"
    assert sum(sent for sent, _ in results) == threads * rounds, "every transfer answered"
    a_to_b = sum(rounds * (100 + i) for i in range(0, threads, 2))
    b_to_a = sum(rounds * (100 + i) for i in range(1, threads, 2))
    with rt.uow() as uow:
        assert _balance(uow, ALICE) == start - a_to_b + b_to_a
        assert _balance(uow, BOB) == start + a_to_b - b_to_a
        assert ledger.check(uow) == []


@pytest.mark.parametrize("amount,currency,code", [
    (100_000_000_01, "USD", "AMOUNT_TOO_LARGE"), (0, "USD", "AMOUNT_TOO_SMALL"),
    (12.5, "USD", "VALIDATION_ERROR"), (True, "USD", "VALIDATION_ERROR"), (100, "EUR", "INVALID_CURRENCY"),
])
def test_core_refuses_the_amounts_the_api_refuses(runtime, alice, amount, currency, code):
    """A caller that is not the API (the bot, a worker) gets the API's verdict on an amount,
    before anything is read or written."""
    from core.wallets import deposits

    with runtime.uow() as uow:
        me = users.find_by_phone(uow, ALICE)
        for attempt in (
            lambda: transfers.send(uow, runtime, sender=alice, amount=amount, currency=currency, to_phone=BOB),
            lambda: deposits.create(uow, runtime, user_id=me.id, amount=amount, currency=currency,
                                    method="mtn_momo", phone_number=ALICE, livemode=False),
        ):
            with pytest.raises(InvalidInput) as e:
                attempt()
            assert (e.value.code, e.value.details) == (code, {"field": "currency" if code == "INVALID_CURRENCY"
                                                                 else "amount"})
