# Two commands for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test test-fast test-trust trust-report lint typecheck test-sqlite test-postgres browser format clean

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
	env -u DATABASE_URL $(BIN)/pytest -m "not trust"

test-postgres: $(STAMP) browser
	scripts/with-postgres $(BIN)/pytest -m "not trust"

## The heavy trust suite (fuzzing at volume, the state machine, faults), on PostgreSQL
test-trust: $(STAMP) browser
	scripts/with-postgres $(BIN)/pytest -m trust

## docs/reliability.md from a run of every test that records figures (tests/figures.py)
trust-report: $(STAMP) browser
	rm -rf var/trust && mkdir -p var/trust
	start=$$(date +%s); \
	TRUST_REPORT_DIR=$(CURDIR)/var/trust scripts/with-postgres $(BIN)/pytest -m "" \
		$$(grep -rl --include='*.py' 'tests.figures import' tests | sed 's#/conftest.py$$##' | sort -u) && \
	$(BIN)/python scripts/trust_report.py var/trust docs/reliability.md $$(( $$(date +%s) - start ))

## The quick tests only, on SQLite: no subprocesses, browser, fuzzing or thread races
test-fast: $(STAMP)
	env -u DATABASE_URL $(BIN)/pytest -m "not slow and not browser and not trust"

browser:
	@scripts/ensure-chromium

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
