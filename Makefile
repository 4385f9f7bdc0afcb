# O2C Hub — the two commands of the README's quick start, and a few helpers.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo test test-quick lint setup chromium bench

$(BIN)/o2c: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/o2c

setup: $(BIN)/o2c

## set up and run the demo on the embedded default (SQLite, in-process jobs, simulated platforms)
demo: setup
	$(BIN)/o2c demo

## Debian's headless Chromium and ChromeDriver for tests/web/test_browser.py, installed when missing (root or sudo)
chromium:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then \
	  echo "installing Debian's chromium and chromium-driver (for the browser test)"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  { $$SUDO apt-get update -qq && \
	    $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } || \
	  { echo "error: could not install chromium and chromium-driver: run apt-get install -y chromium chromium-driver" >&2; exit 1; }; \
	fi
	@chromedriver --version

## set up and run the whole test suite (needs PostgreSQL and Redis on 127.0.0.1, and chromium: see above)
test: setup chromium
	$(BIN)/ruff check .
	$(BIN)/pytest

## the quick subset while you work (no slow end-to-end cases with worker processes)
test-quick: setup
	$(BIN)/pytest -m "not slow" -x -q

lint: setup
	$(BIN)/ruff check .

## every figure of issue 18 with its goal and the reference measured beside it (a few minutes; see benchmarks/run.py)
bench: setup
	$(BIN)/python -m benchmarks
