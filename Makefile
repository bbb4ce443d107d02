# The two commands a newcomer needs:  `make run`  and  `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: venv run test test-unit test-integration test-api test-postgres lint bench bench-api bench-bot bench-transfers bench-jobs bench-payments clean

$(BIN)/soxara: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	@touch $@

venv: $(BIN)/soxara

# The embedded default: SQLite file ./soxara.db, in-process jobs, sandbox rails and messages.
run: venv
	$(BIN)/soxara serve

# The whole suite on the embedded default (SQLite). Tests that need PostgreSQL or Redis
# run against the local services when they are up and skip with a reason when not.
test: venv
	$(BIN)/pytest $(PYTEST_ARGS)

test-unit: venv
	$(BIN)/pytest tests/unit
test-integration: venv
	$(BIN)/pytest tests/integration
test-api: venv
	$(BIN)/pytest tests/api

# The same suite with every runtime on PostgreSQL. Jobs still run in process, eagerly, right
# after the commit that queued them (a job that fails fails its test). Through Redis run the
# tests marked `redis` (here and in `make test`, wherever Redis is up): RQ jobs worked in the
# test process, and `soxara worker` processes of their own (tests/integration/test_rq.py: a
# deposit settling, a chat reply, a claim window ended by the worker's clock, the worker
# outliving Redis) and tests/api/test_redis_restart_pg.py (Redis killed and restarted
# under concurrent transfers). SOXARA_TEST_REDIS picks the Redis database (default /15).
test-postgres: venv
	SOXARA_TEST_BACKEND=postgres $(BIN)/pytest $(PYTEST_ARGS)

# Style (ruff), who may import whom (import-linter's contracts in pyproject.toml, explained
# in docs/architecture.md) and types (mypy).
lint: venv
	$(BIN)/ruff check api bot core workers tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy api bot core workers migrations tests bench

# The API under gunicorn on a fresh PostgreSQL database (dropped after) against a bare
# Flask baseline: req/s, p50, p99 and ratios (bench/api.py; about a minute).
bench-api: venv
	$(BIN)/python -m bench.api $(BENCH_ARGS)

# WhatsApp messages/s through the bot's webhook under gunicorn on a fresh PostgreSQL
# database, many phones chatting at once, against a bare signed echo in the same run
# (bench/bot.py; under a minute).
bench-bot: venv
	$(BIN)/python -m bench.bot $(BENCH_ARGS)

# User-to-user POST /v1/transfers under gunicorn on a fresh PostgreSQL database against the
# same transfer as raw SQL through psycopg2 in the same run, spread over 50 wallets and on
# one hot wallet, and two ceilings (raw SQL, and the API's statements as one PL/pgSQL call,
# each behind a bare Flask route); then the ledger check (bench/transfers.py; about two minutes).
bench-transfers: venv
	$(BIN)/python -m bench.transfers $(BENCH_ARGS)

# Message deliveries/s off Redis by one `soxara worker` process: RQ's forking Worker
# against the SimpleWorker it uses (bench/jobs.py; under a minute).
bench-jobs: venv
	$(BIN)/python -m bench.jobs $(BENCH_ARGS)

# Wallet payments/s (create + confirm, sandbox buyers, settled at once) through the API under
# gunicorn on a fresh PostgreSQL database, spread over merchants and on one hot merchant, beside
# the same run's raw-SQL transfer; then 200 customers paying one merchant at once, and the
# ledger check (bench/payments.py; about a minute).
bench-payments: venv
	$(BIN)/python -m bench.payments $(BENCH_ARGS)

clean:
	rm -rf $(VENV) soxara.db* .pytest_cache
