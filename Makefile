# Everything we repeat. `make run` and `make test` work on a fresh machine with Python 3.11+.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TYPECHECK_TREE := build/typecheck

.PHONY: help venv run serve test test-fast check lint format typecheck buf-lint protos protos-check bench bench-selfcheck bench-server bench-agent bench-diagnosis clean

help:
	@echo "make run        self-check this machine end to end: embedded server, agent, stored report"
	@echo "make test       the whole test-suite"
	@echo "make check      ruff, mypy and buf lint"
	@echo "make protos     regenerate the committed code of protos/probelink/v1"
	@echo "make serve      run the server on 127.0.0.1:50051 (SQLite in ./probelink-data)"
	@echo "make bench      benchmarks (bench-selfcheck, bench-server, bench-agent, bench-diagnosis); numbers go to docs/performance.md"

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# The main job in one command: an embedded server (SQLite in ./probelink-data), the agent's
# self-check uploaded to it, and the stored report read back.
run: $(STAMP)
	$(BIN)/probelink-server run-local

serve: $(STAMP)
	$(BIN)/probelink-server serve

test: $(STAMP)
	$(BIN)/pytest -q

test-fast: $(STAMP)
	$(BIN)/pytest -q -m "not slow"

check: lint typecheck buf-lint

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# mypy cannot follow setuptools' editable import hook, so it reads the packages
# through a tree of symlinks laid out as the installed `probelink` namespace.
typecheck: $(STAMP)
	rm -rf $(TYPECHECK_TREE) && mkdir -p $(TYPECHECK_TREE)/probelink
	for f in $(CURDIR)/protos/probelink/*.py; do ln -s $$f $(TYPECHECK_TREE)/probelink/; done
	ln -s $(CURDIR)/protos/probelink/v1 $(TYPECHECK_TREE)/probelink/v1
	for d in agent server probes firmware_tools; do ln -s $(CURDIR)/$$d $(TYPECHECK_TREE)/probelink/$$d; done
	ln -s $(CURDIR)/tests $(TYPECHECK_TREE)/tests
	ln -s $(CURDIR)/bench $(TYPECHECK_TREE)/bench
	cd $(TYPECHECK_TREE) && $(CURDIR)/$(BIN)/mypy --config-file $(CURDIR)/pyproject.toml probelink \
		$$(cd $(CURDIR) && find tests bench -path tests/fixtures -prune -o -name '*.py' -print)

.tools/node_modules/.bin/buf: .tools/package.json
	cd .tools && npm ci --no-audit --no-fund --loglevel=error
	touch $@

buf-lint: .tools/node_modules/.bin/buf
	.tools/node_modules/.bin/buf lint

protos: $(STAMP)
	$(PY) protos/generate.py

bench: bench-selfcheck bench-server bench-agent bench-diagnosis

bench-selfcheck: $(STAMP)
	$(PY) bench/selfcheck.py

# Adds PostgreSQL when PROBELINK_TEST_POSTGRES (or --postgres) names a server.
bench-server: $(STAMP)
	$(PY) bench/server_core.py

bench-agent: $(STAMP)
	$(PY) bench/agent.py

bench-diagnosis: $(STAMP)
	$(PY) bench/diagnosis.py

clean:
	rm -rf build $(VENV) .tools/node_modules .pytest_cache .mypy_cache .ruff_cache
