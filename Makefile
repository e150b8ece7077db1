# Shortcuts for the README's commands; each target works on a fresh clone.
PYTHON ?= python3
VENV := .venv

.PHONY: install serve test lint bench

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

serve: install
	$(VENV)/bin/segmentation serve

test: install
	$(VENV)/bin/python -m pytest -q

lint: install
	$(VENV)/bin/ruff check service tests
	$(VENV)/bin/mypy service

$(VENV)/.bench-installed: $(VENV)/.installed pyproject.toml
	$(VENV)/bin/pip install -q -e '.[test,bench]'
	touch $@

# The figures of bench/ at 1M rows (BENCH_ARGS=--large adds 10M); needs wrk (apt-get install wrk).
bench: $(VENV)/.bench-installed
	$(VENV)/bin/python -m bench $(BENCH_ARGS)
