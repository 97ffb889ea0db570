# Canary: `make run` starts everything locally; `make test` runs the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi

.PHONY: run test bench clean

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

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis

# Benchmarks never run in CI. BENCH_DATABASE_URL adds a PostgreSQL leg.
bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench
