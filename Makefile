# O2C Hub — the two commands of the README's quick start, and a few helpers.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo test test-quick lint setup

$(BIN)/o2c: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/o2c

setup: $(BIN)/o2c

## set up and run the demo on the embedded default (SQLite, in-process jobs, simulated platforms)
demo: setup
	$(BIN)/o2c demo

## set up and run the whole test suite (needs PostgreSQL and Redis on 127.0.0.1)
test: setup
	$(BIN)/ruff check .
	$(BIN)/pytest

## the quick subset while you work (no slow end-to-end cases with worker processes)
test-quick: setup
	$(BIN)/pytest -m "not slow" -x -q

lint: setup
	$(BIN)/ruff check .
