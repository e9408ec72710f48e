# The two commands of the README: `make run` and `make test`. Both set everything up.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-postgres chromium lint typecheck check bench clean lock

# Every package at the version (and hash) in requirements.lock, the set CI tested; the
# project itself then without resolving anything again.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# Re-lock after a change to pyproject.toml's dependencies: the pins already in the lock are
# kept where they still fit. LOCK_ARGS passes more to uv, e.g.
# `make lock LOCK_ARGS="--upgrade-package prefect"` or `make lock LOCK_ARGS=--upgrade`.
LOCK_ARGS ?=
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet 'uv>=0.13,<0.14'
	$(BIN)/uv pip compile --quiet pyproject.toml --extra test --universal --python-version 3.11 \
	  --generate-hashes --custom-compile-command "make lock" $(LOCK_ARGS) -o requirements.lock

run: $(STAMP)
	PREFECT_SERVER_ANALYTICS_ENABLED=false $(BIN)/newsroom up

test: $(STAMP) chromium
	PREFECT_SERVER_ANALYTICS_ENABLED=false $(BIN)/python -m pytest

# The browser tests drive Debian's Chromium through Playwright (Playwright's own browser
# download does not work here): installed from the distribution when it is missing (as
# root, or with sudo without a password); otherwise the command to run, and a stop.
CHROMIUM := /usr/bin/chromium
chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$(id -u)" -eq 0 ]; then SUDO=""; \
	  elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	  else echo "The browser tests need Chromium: sudo apt-get install -y chromium chromium-driver" >&2; exit 1; fi; \
	  echo "installing Debian's chromium for the browser tests"; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver; \
	fi

# The flow tests once more against a Prefect server on PostgreSQL (and Newsroom's store on
# PostgreSQL), the set-up for more than one machine. CI runs it after `make test`.
test-postgres: $(STAMP) chromium
	PREFECT_SERVER_ANALYTICS_ENABLED=false NEWSROOM_TEST_PREFECT=postgres $(BIN)/python -m pytest tests/orchestration

lint: $(STAMP)
	$(BIN)/ruff check newsroom flows tasks tests bench

# mypy on newsroom, flows and tasks ([tool.mypy] in pyproject.toml; every module enforced).
typecheck: $(STAMP)
	$(BIN)/mypy

# What CI runs before the suite: ruff, the import graph (no cycle, layers point one way,
# tests/test_import_graph.py) and the type check.
check: lint typecheck
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_import_graph.py tests/test_error_tree.py

bench: $(STAMP)
	$(BIN)/python bench/publish.py

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
