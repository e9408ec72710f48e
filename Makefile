# The two commands of the README: `make run` and `make test`. Both set everything up.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-postgres lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	PREFECT_SERVER_ANALYTICS_ENABLED=false $(BIN)/newsroom up

test: $(STAMP)
	PREFECT_SERVER_ANALYTICS_ENABLED=false $(BIN)/python -m pytest

# The flow tests once more against a Prefect server on PostgreSQL (and Newsroom's store on
# PostgreSQL), the set-up for more than one machine. CI runs it after `make test`.
test-postgres: $(STAMP)
	PREFECT_SERVER_ANALYTICS_ENABLED=false NEWSROOM_TEST_PREFECT=postgres $(BIN)/python -m pytest tests/orchestration

lint: $(STAMP)
	$(BIN)/ruff check newsroom flows tasks tests bench

bench: $(STAMP)
	$(BIN)/python bench/publish.py

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
