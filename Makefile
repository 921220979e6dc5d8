# One-command tasks. `make run` serves the app, `make test` runs every test; both create
# the virtual environment (.venv) and install what they need on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
PYTEST_ARGS ?=

.PHONY: run test lint format check install install-dev bench docs openapi mongo-dev clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed; set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## Serve the app on http://127.0.0.1:5000 with the embedded development defaults.
run: install
	$(BIN)/flask run --host $(HOST) --port $(PORT)

## Run the whole test suite (pytest exit code 5, "no tests ran", counts as a failure).
test: install-dev
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest ran no tests: failing" >&2; exit 1; fi; exit $$rc

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy api auth database bench scripts

format: install-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

check: lint test

## Load-test the app under gunicorn against a bare Flask app (see README, Benchmark).
bench: install-dev
	$(BIN)/python bench/run.py

## A local MongoDB-compatible server (SecantusDB) for the Mongo routes; prints the MONGO_URI.
mongo-dev: install-dev
	$(BIN)/python scripts/mongo_dev.py

## Regenerate .env.example and README's settings table from api/settings.py.
docs: install
	$(BIN)/python scripts/write_docs.py

## Rewrite the committed OpenAPI document (openapi.json) from the code; CI checks it is current.
openapi: install
	$(BIN)/python scripts/write_openapi.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
