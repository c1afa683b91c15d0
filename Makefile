# The two entry points of the README. Everything else is an implementation detail.
#   make demo       — set up .venv, start the bundled hub and open the explorer in Voila
#   make test       — set up .venv and the test parts (Debian: chromium, tinyproxy, curl;
#                     npm: Azurite) and run every check
#   make test-fast  — the edit loop: no browser, no slow suites, in parallel (pytest-xdist)
# Any python3 >= 3.11 works: make test PYTHON=python3.13 (after make clean if .venv exists).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
DEMO_PORT ?= 8866
PYTEST_ARGS ?=

# Debian packages the tests use, as command:package (installed when the command is missing).
DEBIAN_PARTS   := tinyproxy:tinyproxy-bin curl:curl unshare:util-linux
DEBIAN_BROWSER := /usr/bin/chromium:chromium
# Azurite (Azure Blob emulator) from npm, pinned in tests/parts/package.json.
AZURITE := tests/parts/node_modules/.bin/azurite-blob

.PHONY: demo test test-fast lint venv debian-test debian-fast clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  found=$$($(PYTHON) -V 2>&1) || found="not found"; \
	  echo "error: PYTHON=$(PYTHON) is not Python >= 3.11 ($$found);" \
	       "run e.g.: make $(MAKECMDGOALS) PYTHON=python3.11"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

venv: $(STAMP)

# $(1): command:package pairs. One apt-get install for every package whose command is missing
# (as root); otherwise the command to run.
define debian
	@missing=""; for pair in $(1); do \
	  command -v "$${pair%%:*}" >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian packages for the tests:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "error: missing Debian packages for the tests; run: sudo apt-get install -y$$missing"; exit 2; \
	  fi; \
	fi
endef

debian-test:
	$(call debian,$(DEBIAN_BROWSER) $(DEBIAN_PARTS))

debian-fast:
	$(call debian,$(DEBIAN_PARTS))

$(AZURITE): tests/parts/package.json
	@command -v npm >/dev/null 2>&1 || { \
	  echo "error: npm not found (Azurite, the Azure Blob emulator of the tests, comes from npm)"; exit 2; }
	npm install --prefix tests/parts --no-audit --no-fund --no-package-lock --loglevel=error
	touch $@

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check mlhub_widgets tests benchmarks scripts noxfile.py
	$(BIN)/mypy

# the quick tests in parallel, then the browser and slow suites one at a time (their timings,
# memory figures and browsers would compete for the CPUs)
test: $(STAMP) debian-test $(AZURITE) lint
	$(BIN)/python -m pytest -n auto -m "not browser and not slow" -q $(PYTEST_ARGS)
	$(BIN)/python -m pytest -m "browser or slow" $(PYTEST_ARGS)

test-fast: $(STAMP) debian-fast $(AZURITE)
	$(BIN)/python -m pytest -n auto -m "not browser and not slow" -q $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/mlhub demo --port $(DEMO_PORT)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache tests/parts/node_modules
