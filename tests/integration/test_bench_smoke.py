"""The benchmarks' machinery keeps working: gunicorn up, keep-alive clients, figures, down."""

from __future__ import annotations

import os

import pytest

from bench.harness import Gunicorn, Scenario, run_interleaved


def test_bench_load_generator_against_the_baseline_app(tmp_path):
    server = Gunicorn("bench.hello:app", dict(os.environ), workers=1, threads=2,
                      log_path=str(tmp_path / "gunicorn.log"))
    try:
        server.wait_ready("/hello")
        (r,) = run_interleaved([Scenario("hello", server.port, "GET", "/hello")], rounds=2,
                               clients=2, procs=1, warmup=0.2, duration=0.6)
    finally:
        server.stop()
    assert server.proc.returncode is not None, "gunicorn stopped"
    assert r.errors == 0 and r.count > 10
    assert 0 < r.p50_ms <= r.p99_ms


@pytest.mark.postgres
def test_bench_transfers_tiny_run(capsys, pg_template_url):
    """A whole bench/transfers run, tiny: its own database (created, dropped), API and raw
    transfers, the two ceilings (raw SQL and the API's statements as one PL/pgSQL call,
    each behind a bare Flask route), the hot wallet, then the ledger check over every row
    all of them wrote. (`pg_template_url` is only here to
    skip, or fail under CI=true, where PostgreSQL is absent.)"""
    from bench import transfers

    rc = transfers.main(["--users", "3", "--clients", "2", "--client-procs", "1", "--workers", "1",
                         "--threads", "2", "--duration", "0.6", "--warmup", "0.2", "--rounds", "1"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "ledger check: the ledger balances" in out and "conserved to the cent" in out
    assert "API / raw SQL:" in out and "one hot sender" in out
    assert "raw SQL behind a bare Flask route" in out and "one PL/pgSQL call" in out


@pytest.mark.postgres
@pytest.mark.redis
def test_bench_jobs_tiny_run(capsys, pg_template_url, redis_url, monkeypatch):
    """bench/jobs end to end, tiny: both worker classes drain their queue, every message
    is sent once."""
    from bench import jobs

    monkeypatch.setattr(jobs, "REDIS_URL", redis_url)
    rc = jobs.main(["--messages", "5"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "every message sent once" in out and "SimpleWorker / Worker:" in out


@pytest.mark.postgres
def test_bench_payments_tiny_run(capsys, pg_template_url):
    """bench/payments end to end, tiny: API payments (spread and one hot merchant) beside the
    raw-SQL transfer, a burst at one merchant, the merchant's balance the sum of its nets,
    and the ledger check."""
    from bench import payments

    rc = payments.main(["--customers", "4", "--merchants", "2", "--burst", "6", "--clients", "2",
                        "--client-procs", "1", "--workers", "1", "--threads", "2", "--duration", "0.6",
                        "--warmup", "0.2", "--rounds", "1"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "API payments / raw-SQL transfers:" in out and "6 customers paying one merchant at once" in out
    assert '"hot_merchant_balance_is_sum_of_nets": true' in out and '"ledger_breaches": []' in out
