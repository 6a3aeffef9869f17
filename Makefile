# strikechain: `make demo` and `make test` work on a fresh machine with Python >= 3.11 and make.
# Each creates .venv if missing and installs the exact pins from requirements/.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check
PYTEST_WORKERS ?= 2

.PHONY: demo test test-long lint bench lock clean help
.DEFAULT_GOAL := help

help:
	@echo "make demo       set up .venv and run the demo"
	@echo "make test       set up .venv and run lint, types, import contracts and the test suite"
	@echo "make test-long  the long tests (not part of make test)"
	@echo "make bench      run every benchmark, results in benchmarks/results/"
	@echo "make lock       re-pin requirements/*.txt after a dependency change"

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "strikechain needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)

# One stamp per install level; each is redone when its pins or pyproject.toml change.
$(VENV)/.runtime: requirements/runtime.txt pyproject.toml | $(BIN)/python
	$(PIP) -r requirements/runtime.txt
	$(PIP) --no-deps -e .
	@touch $@

$(VENV)/.dev: requirements/dev.txt $(VENV)/.runtime
	$(PIP) -r requirements/dev.txt
	@touch $@

$(VENV)/.bench: requirements/bench.txt $(VENV)/.runtime
	$(PIP) -r requirements/bench.txt
	@touch $@

demo: $(VENV)/.runtime
	$(BIN)/strikechain demo

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests tools
	$(BIN)/ruff format --check src tests tools
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

test: lint
	$(BIN)/pytest -n $(PYTEST_WORKERS) --durations=15 -m "not long"

test-long: $(VENV)/.dev
	$(BIN)/pytest -n $(PYTEST_WORKERS) --durations=15 -m long

bench: $(VENV)/.bench
	$(BIN)/strikechain bench all

lock: | $(BIN)/python
	$(PIP) uv==0.13.9
	$(BIN)/uv pip compile --quiet --python-version 3.11 --no-header --annotation-style line pyproject.toml -o requirements/runtime.txt
	$(BIN)/uv pip compile --quiet --python-version 3.11 --no-header --annotation-style line pyproject.toml --extra dev -o requirements/dev.txt
	$(BIN)/uv pip compile --quiet --python-version 3.11 --no-header --annotation-style line pyproject.toml --extra bench -o requirements/bench.txt

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis .import_linter_cache
