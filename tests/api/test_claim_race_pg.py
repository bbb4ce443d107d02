"""Claims under fire on PostgreSQL: many API claims of one code at once (each with its own
idempotency key, as a recipient tapping "claim" on a slow phone would send them), racing
the sweeper that returns the money at the end of the claim window. Exactly one of them
moves the money, once; the rest get their contract errors; the ledger balances."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core.events.events import Event
from core.identity import users
from core.messaging import outbox
from core.wallets import claims, ledger, sandbox, transfers, wallets
from tests.conftest import Api, at_once, signed_in
from workers import transfers as transfer_sweeps

ALICE = "+231881000001"
ROUNDS, CLAIMERS, AMOUNT = 6, 8, 500


def _code_sent_to(rt, phone: str) -> str:
    with rt.uow() as uow:
        body = outbox.outbox_for(uow, phone, limit=50, secret_key=rt.secret_key)[-1].body
    return body.split("CLAIM ")[-1].split(")")[0].strip()


def _race(rt, app, token: str, code: str, sweep_at, delay: float) -> tuple[list, list[int]]:
    """CLAIMERS API claims of `code` at once, and two sweepers at `sweep_at` (if given,
    after `delay`): (the claims' answers, what each sweeper returned)."""
    sweepers = 2 if sweep_at else 0

    def claim_or_sweep(i: int):
        if i < CLAIMERS:
            return "answer", Api(app.test_client(), token).post(
                "/v1/transfers/claim", {"claim_code": code}, idem=uuid.uuid4().hex)
        time.sleep(delay)  # later rounds let the claims get further before it runs
        return "swept", transfer_sweeps.expire_due(rt, now=sweep_at)

    done = at_once(CLAIMERS + sweepers, claim_or_sweep)
    answers = [r for kind, r in done if kind == "answer"]
    swept = [r for kind, r in done if kind == "swept"]
    return answers, swept


@pytest.mark.postgres
def test_one_claim_or_one_return_per_transfer_whatever_runs_at_once(pg_runtime):
    from api.app import create_app

    rt = pg_runtime
    app = create_app(runtime=rt)
    with rt.uow() as uow:
        a, alice_wallet = sandbox.make_buyer(uow, ALICE, amount=ROUNDS * AMOUNT)
        uow.commit()
    alice = transfers.Party("user", a.id, False)
    outcomes = []
    for n in range(ROUNDS):
        phone = f"+23188150{n:04d}"
        with rt.uow() as uow:
            t = transfers.send(uow, rt, sender=alice, amount=AMOUNT, currency="USD", to_phone=phone)
            uow.commit()
        code = _code_sent_to(rt, phone)
        with rt.uow() as uow:
            newbie = users.get_or_create(uow, phone)
            uow.commit()
        token, _ = signed_in(rt, newbie.id)
        # Odd rounds race the sweeper at the window's end; even rounds only each other.
        sweep_at = t.claim_expires_at if n % 2 else None
        delay = 0.01 * (n // 2)
        answers, swept = _race(rt, app, token, code, sweep_at, delay)

        statuses = sorted(r.status_code for r in answers)
        codes = sorted(r.get_json()["error"]["code"] for r in answers if r.status_code != 200)
        with rt.uow() as uow:
            final = uow.session.get(transfers.Transfer, t.id).status
            kinds = sorted(uow.session.scalars(select(Event.type).where(Event.object_id == t.id)))
            got = wallets.wallet_for(uow, wallets.USER, newbie.id, "USD", False).balance
        if final == "claimed":
            assert statuses == [200] + [409] * (CLAIMERS - 1), statuses
            assert set(codes) == {"INVALID_STATE"} and sum(swept) == 0 and got == AMOUNT
            assert kinds == ["transfer.claimed", "transfer.created"]
        else:
            assert final == "expired" and sweep_at is not None
            assert statuses == [422] * CLAIMERS and set(codes) == {"CLAIM_EXPIRED"}, (statuses, codes)
            assert sum(swept) == 1 and got == 0
            assert kinds == ["transfer.created", "transfer.expired"]
        outcomes.append(final)

    with rt.uow() as uow:
        assert ledger.check(uow) == []
        held = wallets.system_account(uow, "claims_held", "USD", False)
        assert held.balance == 0  # every cent left the holding account exactly once
        alice_now = wallets.get(uow, alice_wallet.id).balance
        claimed = uow.session.scalar(select(func.count()).select_from(transfers.Transfer)
                                     .where(transfers.Transfer.status == "claimed"))
    assert alice_now == outcomes.count("expired") * AMOUNT
    assert claimed == outcomes.count("claimed")
    assert outcomes[0::2] == ["claimed"] * (ROUNDS // 2)  # no sweeper: the claim always wins


@pytest.mark.postgres
def test_a_claim_after_the_window_is_refused_even_before_the_sweeper_runs(pg_runtime):
    rt = pg_runtime
    with rt.uow() as uow:
        a, _ = sandbox.make_buyer(uow, ALICE, amount=AMOUNT)
        uow.commit()
    with rt.uow() as uow:
        t = transfers.send(uow, rt, sender=transfers.Party("user", a.id, False), amount=AMOUNT,
                           currency="USD", to_phone="+231881009999")
        uow.commit()
    code = _code_sent_to(rt, "+231881009999")
    with rt.uow() as uow:
        newbie = users.get_or_create(uow, "+231881009999")
        uow.commit()
    from core.errors import Refused

    with rt.uow() as uow, pytest.raises(Refused) as e:
        claims.claim(uow, rt, user_id=newbie.id, livemode=False, claim_code=code,
                     now=t.claim_expires_at + timedelta(seconds=1))
    assert e.value.code == "CLAIM_EXPIRED"
    with rt.uow() as uow:
        assert wallets.system_account(uow, "claims_held", "USD", False).balance == AMOUNT
