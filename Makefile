# The two entry points of the README. Everything else is an implementation detail.
#   make demo  — set up .venv, start the bundled hub and open the explorer in Voila
#   make test  — set up .venv (+ Debian's chromium for the browser tests) and run every check
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
DEMO_PORT ?= 8866

.PHONY: demo test lint venv chromium clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (Python 3.11 is required)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

venv: $(STAMP)

chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "error: /usr/bin/chromium is missing; run: sudo apt-get install -y chromium"; exit 2; \
	  fi; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check mlhub_widgets tests benchmarks scripts
	$(BIN)/mypy

test: $(STAMP) chromium lint
	$(BIN)/python -m pytest

demo: $(STAMP)
	$(BIN)/mlhub demo --port $(DEMO_PORT)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
