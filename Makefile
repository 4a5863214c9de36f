# The two commands: `make run` (the service on the demo data) and `make test` (the test suite).
# Both set everything up on a fresh machine; later runs reuse the virtual environment.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export MATCHER_HOME ?= $(CURDIR)/var
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install run test services lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The local CPU wheel first: an unpinned torch would pull gigabytes of CUDA.
	$(PY) -m pip install -q --find-links /opt/wheels torch==2.13.0
	$(PY) -m pip install -q --find-links /opt/wheels -e '.[dev,bench]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(VENV)/bin/techmatch-serve

services:
	@bash scripts/services.sh
	@bash scripts/install-browser.sh

# Lint first: CI runs exactly this target, so ruff and mypy are checked on every submission.
test: install services lint
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check matcher api tests benchmarks
	$(VENV)/bin/ruff format --check matcher api tests benchmarks
	$(VENV)/bin/mypy

clean:
	rm -rf var .pytest_cache
