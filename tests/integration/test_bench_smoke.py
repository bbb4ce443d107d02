"""bench/api.py's machinery keeps working: gunicorn up, keep-alive clients, figures, down."""

from __future__ import annotations

import os

from bench.api import Gunicorn, Scenario, run_interleaved


def test_bench_load_generator_against_the_baseline_app(tmp_path):
    server = Gunicorn("bench.hello:app", dict(os.environ), workers=1, threads=2,
                      log_path=str(tmp_path / "gunicorn.log"))
    try:
        server.wait_ready("/hello")
        (r,) = run_interleaved([(server.port, Scenario("hello", "GET", "/hello"))], rounds=2,
                               clients=2, procs=1, warmup=0.2, duration=0.6)
    finally:
        server.stop()
    assert server.proc.returncode is not None, "gunicorn stopped"
    assert r.errors == 0 and r.requests > 10
    assert 0 < r.p50_ms <= r.p99_ms
