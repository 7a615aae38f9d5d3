# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
NODE_STAMP := node_modules/.installed-stamp

.PHONY: demo test lint unit services bench soak clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: $(STAMP)
	$(BIN)/strangler demo

services: $(STAMP)
	bash scripts/ensure-postgres.sh
	bash scripts/ensure-system-packages.sh

lint: $(STAMP)
	$(BIN)/ruff check strangler tests bench
	$(BIN)/ruff format --check strangler tests bench
	$(BIN)/mypy

test: $(STAMP) $(NODE_STAMP) services lint
	$(BIN)/python -m pytest --cov=strangler --cov-report=term:skip-covered

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

# Not in CI: every bench, bounded, then docs/BENCHMARKS.md (installs wrk, nginx, py-spy).
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python bench/_run_all.py

# Not in CI: a steady order rate for SOAK_MINUTES (RSS over time, ledger size, no loss).
SOAK_MINUTES ?= 10
SOAK_RATE ?= 20
soak: $(STAMP)
	$(BIN)/python -m tests.reliability.soak --minutes $(SOAK_MINUTES) --rate $(SOAK_RATE)

clean:
	rm -rf $(VENV) node_modules .strangler .pytest_cache .mypy_cache .ruff_cache
