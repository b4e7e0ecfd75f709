# The two commands the README names: `make demo` and `make test`.
# Both create the environment from the lock file on a fresh machine.
PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
DEMO_CUSTOMERS ?= 50000
DEMO_SEED ?= 7

.PHONY: install demo test lint format bench clean system-deps

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# The demo needs no Spark; the tests also need Spark (the `spark` dependency group).
$(VENV)/.synced-runtime: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --inexact
	touch $@

$(VENV)/.synced-all: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --all-groups
	touch $@

install: $(VENV)/.synced-all

demo: $(VENV)/.synced-runtime
	$(BIN)/perennial demo run --customers $(DEMO_CUSTOMERS) --seed $(DEMO_SEED) --serve

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Real parts the tests start themselves: a PostgreSQL server, Spark (needs Java) and
# Debian's Chromium for the browser tests (with a CJK font, so screenshots show Chinese).
system-deps:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
		(apt-get update -qq && apt-get install -y -qq postgresql >/dev/null)
	@command -v java >/dev/null 2>&1 || \
		(apt-get update -qq && apt-get install -y -qq default-jre-headless >/dev/null)
	@test -x /usr/bin/chromium && fc-list :lang=zh | grep -q . || \
		(apt-get update -qq && apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null)

test: system-deps lint
	$(BIN)/pytest --cov --cov-report=term-missing:skip-covered

bench: install
	$(BIN)/python benchmarks/bench_ingest.py

clean:
	rm -rf $(VENV) $(TOOLS) .perennial demo-data .pytest_cache .mypy_cache .ruff_cache
