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
