# strikechain: `make demo` and `make test` work on a fresh machine with Python >= 3.11 and make.
# Each creates .venv if missing and installs the exact pins from requirements/.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check
PYTEST_WORKERS ?= 2

.PHONY: demo test test-long lint bench native native-clean lock clean help browser
.DEFAULT_GOAL := help

help:
	@echo "make demo       set up .venv and run the demo"
	@echo "make test       set up .venv and run lint, types, import contracts and the test suite"
	@echo "make test-long  the long tests (not part of make test)"
	@echo "make bench      run every benchmark, results in benchmarks/results/"
	@echo "make native     compile the engine's hot modules with mypyc (demo, test and bench do)"
	@echo "make native-clean  remove them: the engine runs interpreted"
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

# The engine's hot modules compiled by mypyc (tools/build_native.py), rebuilt when any engine
# source changes. Without mypyc (mypy is in requirements/dev.txt) or a C compiler the build
# says so and the engine runs interpreted; the stamp is then not written, so it is tried again.
NATIVE_STAMP := src/strikechain/engine/_native_build.json
NATIVE_SOURCES := $(wildcard src/strikechain/engine/*.py) src/strikechain/sim/world.py \
	$(addprefix src/strikechain/,$(addsuffix .py,runtime/dispatch runtime/inbox sim/consensus \
	sim/feed sim/gateway sim/kernel sim/network sim/path_cursor sim/recorder \
	$(addprefix sim/agents/,arbitrageur base grid market_maker noise orders)))
$(NATIVE_STAMP): $(NATIVE_SOURCES) src/strikechain/_native.py tools/build_native.py | $(VENV)/.runtime
	$(BIN)/python tools/build_native.py

native: $(NATIVE_STAMP)

native-clean: | $(BIN)/python
	$(BIN)/python tools/build_native.py --clean

demo: $(VENV)/.runtime native
	$(BIN)/strikechain demo

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests tools
	$(BIN)/ruff format --check src tests tools
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

# The dashboard's browser tests drive Debian's chromium: installed here if missing (they skip,
# saying why, only when it cannot be).
browser:
	bash tools/install_browser.sh

test: lint native browser
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup --durations=15 -m "not long"

test-long: $(VENV)/.dev native
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup --durations=15 -m long

bench: $(VENV)/.bench native
	$(BIN)/strikechain bench all

lock: | $(BIN)/python
	$(PIP) uv==0.13.9
	$(BIN)/uv pip compile --quiet --python-version 3.11 --no-header --annotation-style line pyproject.toml -o requirements/runtime.txt
	$(BIN)/uv pip compile --quiet --python-version 3.11 --no-header --annotation-style line pyproject.toml --extra dev -o requirements/dev.txt
	$(BIN)/uv pip compile --quiet --python-version 3.11 --no-header --annotation-style line pyproject.toml --extra bench -o requirements/bench.txt

clean:
	rm -rf build/native src/strikechain/engine/*.so src/strikechain/sim/*.so src/strikechain/runtime/*.so $(NATIVE_STAMP)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis .import_linter_cache
