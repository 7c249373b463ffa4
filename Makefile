# SupportLens: `make run` serves the API with demo data, `make test` runs lint and every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint format bench clean browser reliability
VENDOR := src/supportlens/web/static/vendor/chart.umd.min.js

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# The dashboard's chart library, from the npm registry (web/package.json, locked), never committed.
$(VENDOR): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(dir $(VENDOR))
	cp web/node_modules/chart.js/dist/chart.umd.min.js $(VENDOR)

# Debian's Chromium drives the dashboard's browser tests (SUPPORTLENS_CHROMIUM names another binary).
browser:
	@test -n "$$SUPPORTLENS_CHROMIUM" || command -v chromium >/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium)

install: $(STAMP) $(VENDOR)

run: $(STAMP) $(VENDOR)
	$(BIN)/supportlens serve --demo-if-empty --print-token

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

# Tests that assert a wall-clock budget (marker `timing`) run alone, after the others: beside a
# second worker's heavy tests on 2 cores they measure the neighbour, not the product.
test: lint $(VENDOR) browser
	$(BIN)/pytest -q -n 2 --dist loadfile -m "not timing"
	$(BIN)/pytest -q -m timing

format: $(STAMP)
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

bench: $(STAMP)
	$(BIN)/python -m bench.run

# Long forms of tests/reliability (crash, shutdown, time limits, load at 1M tickets, fuzzing),
# then docs/reliability.md from their figures (build/reliability/*.json).
reliability: $(STAMP)
	rm -rf build/reliability
	mkdir -p build/reliability && (git describe --always --dirty > build/reliability/source.txt || true)
	SUPPORTLENS_RELIABILITY=long $(BIN)/pytest -q tests/reliability; \
		status=$$?; $(BIN)/python -m tests.reliability.report && exit $$status

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache web/node_modules $(dir $(VENDOR))
