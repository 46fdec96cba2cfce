# Two commands for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
# The suite runs on pytest-xdist workers, one per core (`make test WORKERS=0` runs it in one
# process, `WORKERS=4` on four). Each worker has its own test database (pytest-django names
# it test_…_gw0, test_…_gw1), its own live server, Chromium and fake servers on ports the
# kernel picks. Tests that must keep one worker's order run on it with
# @pytest.mark.xdist_group (honoured by loadgroup); the trust suite goes file by file
# (loadfile), since its modules share heavy module-scoped fixtures such as a cluster.
WORKERS ?= auto
PARALLEL = -n $(WORKERS) --dist loadgroup
PARALLEL_BY_FILE = -n $(WORKERS) --dist loadfile

.PHONY: run test test-fast test-trust test-scale trust-report bench lint typecheck test-sqlite test-postgres browser format clean

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

## Serve the portal with demo data on the SQLite default at http://127.0.0.1:8000
# The demo runs on the payment sandbox unless you configure Stripe.
run: export PAYMENTS_SANDBOX ?= 1
run: $(STAMP)
	$(BIN)/tranche migrate --verbosity 0
	$(BIN)/tranche demo --if-empty
	$(BIN)/tranche run

## Everything: lint, format check, types, the suite on SQLite and on PostgreSQL
test: lint typecheck test-sqlite test-postgres test-trust

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	DEBUG=1 $(BIN)/mypy

test-sqlite: $(STAMP) browser
	env -u DATABASE_URL $(BIN)/pytest $(PARALLEL) -m "not trust and not scale"

test-postgres: $(STAMP) browser
	scripts/with-postgres $(BIN)/pytest $(PARALLEL) -m "not trust and not scale"

## The heavy trust suite (fuzzing at volume, the state machine, faults), on PostgreSQL
test-trust: $(STAMP) browser
	scripts/with-postgres $(BIN)/pytest $(PARALLEL_BY_FILE) -m "trust and not scale"

## Two web servers and two workers on one PostgreSQL under scripted load, with a worker
# killed mid-run: on the database queue through PgBouncer in transaction mode (when
# pgbouncer is installed), then on Redis with RQ (when redis-server is); docs/scaling.md.
# One pytest process: the test starts its own processes, and a few minutes is its budget.
test-scale: $(STAMP)
	scripts/with-postgres $(BIN)/pytest -n 0 -m scale tests/scale -s

## docs/reliability.md from a run of every test that records figures (tests/figures.py)
trust-report: $(STAMP) browser
	rm -rf var/trust && mkdir -p var/trust
	start=$$(date +%s); \
	TRUST_REPORT_DIR=$(CURDIR)/var/trust scripts/with-postgres $(BIN)/pytest $(PARALLEL_BY_FILE) -m "" \
		$$(grep -rl --include='*.py' 'tests.figures import' tests | sed 's#/conftest.py$$##' | sort -u) && \
	$(BIN)/python scripts/trust_report.py var/trust docs/reliability.md $$(( $$(date +%s) - start ))

## Throughput and latency at 10,000 and 100,000 invoices on PostgreSQL -> docs/benchmarks.md
# Not part of `make test`: about ten minutes, and its figures depend on the machine.
# BENCH_ARGS passes options, e.g. BENCH_ARGS="--scales 0.1 --profile" (see bench/run.py).
bench: $(STAMP)
	scripts/with-postgres $(BIN)/python -m bench.run $(BENCH_ARGS)

## The quick tests only, on SQLite: no subprocesses, browser, fuzzing or thread races
test-fast: $(STAMP)
	env -u DATABASE_URL $(BIN)/pytest $(PARALLEL) -m "not slow and not browser and not trust and not scale"

browser:
	@scripts/ensure-chromium

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
