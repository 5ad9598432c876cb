# The two commands: `make run` and `make test`. Only Python 3.11+ is needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# make test runs on PostgreSQL and Redis (started by .ci/run on CI).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/hubsync
TEST_BROKER_URL ?= redis://127.0.0.1:6379/0
TEST_ENV := DEBUG=1 DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL)

.PHONY: run test lint bench clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)
	bin/run

test: $(STAMP) lint
	$(TEST_ENV) $(BIN)/pytest -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DEBUG=1 $(BIN)/mypy
	DEBUG=1 $(BIN)/python manage.py makemigrations --check --dry-run >/dev/null

# The sync benchmarks empty their database: they get one of their own (and
# run with DEBUG off whatever BENCH_ENV says; migrate needs it on here).
BENCH_ENV := DEBUG=1 DATABASE_URL=postgres://postgres@127.0.0.1:5432/hubsync_bench \
	CELERY_BROKER_URL=redis://127.0.0.1:6379/5 SEND_POLL_SECONDS=1

bench: $(STAMP)
	$(BIN)/python bench/emulator_bench.py
	createdb -h 127.0.0.1 -U postgres hubsync_bench 2>/dev/null || true
	$(BENCH_ENV) $(BIN)/python manage.py migrate --noinput -v 0
	$(BENCH_ENV) $(BIN)/python bench/sync_bench.py --customers 100000 \
		--naive-sample 500 --latency-samples 20
	$(BENCH_ENV) $(BIN)/python bench/relay_bench.py --customers 20000
	$(BIN)/python bench/api_bench.py --requests 3000 --threads 4

clean:
	rm -rf var .mypy_cache .ruff_cache
