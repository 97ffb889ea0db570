# Canary: `make run` starts everything locally; `make test` runs the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi

.PHONY: run test test-calendar screenshots bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

run: $(VENV)/.installed
	$(FLASK) db upgrade
	$(FLASK) demo seed
	$(FLASK) dev

test: $(VENV)/.installed-dev
	$(BIN)/pytest

# The tests whose outcome turns on the calendar, at a dozen instants across a
# year (tests/conftest.py: CALENDAR_SWEEP); .ci/run runs it after the suite.
test-calendar: $(VENV)/.installed-dev
	$(BIN)/pytest -q --calendar-sweep tests/cadence tests/test_loop.py

# The browser journeys, saving their pictures to docs/screenshots.
screenshots: $(VENV)/.installed-dev
	CANARY_SCREENSHOTS=1 $(BIN)/pytest -q -m browser

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis

# Benchmarks never run in CI. BENCH_DATABASE_URL adds a PostgreSQL leg.
bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench
