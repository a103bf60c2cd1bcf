# The README's commands. Every target builds the virtual environment it needs first.
# The interpreter the venvs are made from: the fastest Python 3.11 or 3.12 found, asked once and only when
# a venv is made (scripts/pick_python.py: builds differ by a quarter or more on this CPU-bound suite;
# python3 if it cannot say). `make clean` then `make PY=... venv` chooses another.
PY ?= $(eval PY := $(or $(shell python3 scripts/pick_python.py),python3))$(PY)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip --quiet --disable-pip-version-check
BASE_IMAGE := python:3.12-slim

.PHONY: demo test test-unit test-e2e bench lint venv lock pin-base clean dbt-1.12 compat

# Runtime dependencies come from the hash-locked requirements.lock, exactly as the Dockerfile installs
# them; the dev tools are then resolved around those pins (a constraints file), and the result checked.
$(BIN)/.installed: requirements.lock requirements-dev.txt scripts/lock_requirements.py
	$(PY) -m venv $(VENV)
	$(PIP) install --require-hashes --only-binary=:all: -r requirements.lock
	$(BIN)/python scripts/lock_requirements.py constraints > $(VENV)/constraints.txt
	$(PIP) install -r requirements-dev.txt -c $(VENV)/constraints.txt
	$(BIN)/python scripts/lock_requirements.py check
	touch $@

venv: $(BIN)/.installed

# dbt 1.12 in its own virtual environment, for the end-to-end and exactness tests that run it (issue 13).
# dbt-core 1.12 installs only around its dbt-core-experimental-parser dependency: its other requirements
# first, then dbt-core and dbt-duckdb without dependencies (about 20 seconds).
DBT_112 := .venv-dbt-1.12
$(DBT_112)/.installed: tests/engines/dbt-1.12.txt
	$(PY) -m venv $(DBT_112)
	$(DBT_112)/bin/pip --quiet --disable-pip-version-check install -r tests/engines/dbt-1.12.txt
	$(DBT_112)/bin/pip --quiet --disable-pip-version-check install --no-deps dbt-core==1.12.6 dbt-duckdb==1.11.1
	touch $@

dbt-1.12: $(DBT_112)/.installed

# An old dbt (1.7) in its own virtual environment, for `make compat`.
DBT_OLD := .venv-dbt-1.7
$(DBT_OLD)/.installed: tests/engines/dbt-1.7.txt
	$(PY) -m venv $(DBT_OLD)
	$(DBT_OLD)/bin/pip --quiet --disable-pip-version-check install -r tests/engines/dbt-1.7.txt
	touch $@

demo: venv
	$(BIN)/python -m tests.demo

# Three workers on two cores, one test file each at a time: the end-to-end files each run their own local
# dbt Cloud, and a worker waiting on one (its runs, the action's polls) leaves a core to the others.
# Files go out in collection order, the slowest first (tests/conftest.py), not xdist's by test count.
XDIST := -n 3 --dist loadfile --no-loadscope-reorder
test: venv dbt-1.12
	DBT_ENGINES_REQUIRED=dbt-1.12 $(BIN)/python -m pytest -q $(XDIST) --cov --cov-report=term:skip-covered

# The edit-test loop: the pure and fake-backed tests only (seconds). tests/markers.py says which are e2e.
test-unit: venv
	$(BIN)/python -m pytest -q -m "not e2e"

# The end-to-end tests only: the local dbt Cloud, real dbt (1.11 and 1.12), the image, subprocesses.
test-e2e: venv dbt-1.12
	DBT_ENGINES_REQUIRED=dbt-1.12 $(BIN)/python -m pytest -q $(XDIST) -m e2e

# The exactness oracle's generated projects on an old dbt (1.7) too: on demand, not in CI (README).
compat: venv $(DBT_OLD)/.installed
	DBT_ENGINES_REQUIRED=dbt-1.7 $(BIN)/python -m pytest -q tests/test_exactness_generated.py -k "dbt-1.7"

bench: venv
	$(BIN)/python -m benchmarks

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python scripts/check_imports.py
	$(BIN)/hadolint Dockerfile
	$(BIN)/python scripts/pin_base.py --check
	$(BIN)/zizmor --offline --quiet .github/ action.yml
	$(BIN)/check-jsonschema --builtin-schema vendor.github-actions action.yml
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml examples/*.yml
	$(BIN)/check-jsonschema --builtin-schema vendor.dependabot .github/dependabot.yml
	$(BIN)/python scripts/lock_requirements.py verify

# Re-resolve requirements.txt and rewrite requirements.lock (needs the package index; about 3 minutes).
lock: venv
	$(BIN)/python scripts/lock_requirements.py lock

# Pin the Dockerfile's base image to the digest its tag points at now (needs Docker with buildx and
# the network). The digest is the multi-platform index's, so the pin holds for amd64 and arm64 alike.
pin-base: venv
	@digest=$$(docker buildx imagetools inspect $(BASE_IMAGE) --format '{{json .Manifest}}' \
		| $(BIN)/python -c 'import json, sys; print(json.load(sys.stdin)["digest"])') && \
	$(BIN)/python scripts/pin_base.py "$$digest" && grep -n -B1 '^FROM' Dockerfile

clean:
	rm -rf $(VENV) $(DBT_112) $(DBT_OLD) .pytest_cache .mypy_cache .ruff_cache
