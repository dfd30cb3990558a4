# Shortcuts for the commands in README.md and tests/run.sh; those stay the reference.
PYTHON ?= python3
VENV := .venv
BENCH ?= rerank
ARGS ?=

.PHONY: install serve test lint typecheck bench

# The service, its tests and its checks in .venv (tests/run.sh's Python steps; `make test` adds Debian's packages).
install:
	[ -x $(VENV)/bin/python ] || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip "setuptools>=77"
	$(VENV)/bin/pip install -q "torch==2.14.1" "torchvision==0.29.1"
	$(VENV)/bin/pip install -q -e ".[test,postgres]"

# The embedded default on http://127.0.0.1:8000; TROOPLY_* variables pass through.
serve:
	$(VENV)/bin/trooply serve

# What CI runs: installs, lints, type-checks, then every test. Pytest options in ARGS, e.g. ARGS="-q -k search".
test:
	bash tests/run.sh $(ARGS)

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

typecheck:
	$(VENV)/bin/mypy

# One script of bench/, e.g. make bench BENCH=search_latency ARGS="--products 10000 --model ViT-B-32".
bench:
	$(VENV)/bin/python bench/$(BENCH).py $(ARGS)
