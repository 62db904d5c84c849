# mlc-lab: `make book` and `make test` are all a fresh clone needs (plus Python 3.11, 3.12 or 3.13 and make).
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The interpreter for a new $(VENV): PYTHON= if given, else the newest supported one on the PATH (one that
# runs: a pyenv shim for an uninstalled version does not). Recursive (=), so it is looked up only when used.
SUPPORTED_PYTHONS := python3.13 python3.12 python3.11
PYTHON ?= $(firstword $(foreach p,$(SUPPORTED_PYTHONS),$(shell $(p) -c '' >/dev/null 2>&1 && echo $(p))))
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mlc-lab-installed
# A local wheel folder (this project's build machines keep the CPU torch wheel there); elsewhere the
# CPU-only torch index, so pip does not fetch the multi-gigabyte CUDA build.
WHEELS := $(wildcard /opt/wheels)
PIP_SOURCES := $(if $(WHEELS),--find-links $(WHEELS),--extra-index-url https://download.pytorch.org/whl/cpu)
# uv when it is on the PATH (it resolves and installs in parallel), else pip. uv reads neither pip.conf nor
# PIP_FIND_LINKS: the sources above are passed to both explicitly, so uv too gets the CPU torch. uv's
# --index-strategy unsafe-best-match: pick the best version across PyPI and the extra index, as pip does.
UV := $(shell command -v uv 2>/dev/null)
INSTALL := $(if $(UV),$(UV) pip install --python $(BIN)/python --index-strategy unsafe-best-match,$(BIN)/python -m pip install --disable-pip-version-check)
# The chapters run inside the book build (tests/test_book_browser.py: -W, raise_on_error), so nbval runs the
# solutions only; `pytest --nbval-lax chapters/` runs the chapters on their own.
NOTEBOOK_DIRS := $(wildcard solutions)
LAB_ARGS ?= --no-browser

.PHONY: help setup book test test-unit test-notebooks lint lab clean distclean

help:
	@echo "make setup   create $(VENV) with the pinned environment (requirements.txt) and mlc_lab"
	@echo "make book    setup, then build the book into _build/html (every chapter executed)"
	@echo "make test    setup, then pytest tests/ (the book build among them) and nbval over solutions/"
	@echo "make lint    ruff and the import contracts (lint-imports)"
	@echo "make lab     JupyterLab with .md chapters opening as notebooks (LAB_ARGS='--port 8890')"
	@echo "make clean   remove build outputs (distclean: also $(VENV))"

setup: $(STAMP)

# Re-runs only when the pins or the package metadata change; delete $(STAMP) to force it.
$(STAMP): requirements.txt pyproject.toml
	@if test -x $(BIN)/python; then echo "setup: updating $(VENV) ($$($(BIN)/python --version))"; \
	elif test -z "$(PYTHON)"; then echo "setup: no Python 3.11-3.13 on the PATH ($(SUPPORTED_PYTHONS)); give one: make setup PYTHON=/path/to/python3.12" >&2; exit 1; \
	else echo "setup: creating $(VENV) with $(PYTHON) ($$($(PYTHON) --version)), installing with $(if $(UV),uv,pip)"; \
	  $(PYTHON) -m venv $(VENV); fi
	$(INSTALL) $(PIP_SOURCES) -r requirements.txt -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (mlc-lab)" >/dev/null
	$(BIN)/python -c "from mlc_lab.book import configure_jupyterlab as c; c()"
	@touch $(STAMP)

book: setup
	$(BIN)/mlc-lab book

# Both suites always run; the target fails if either did.
test: setup
	@status=0; \
	$(MAKE) --no-print-directory test-unit || status=1; \
	$(MAKE) --no-print-directory test-notebooks || status=1; \
	exit $$status

test-unit: setup
	$(BIN)/python -m pytest tests/ --durations=15

test-notebooks: setup
	$(if $(NOTEBOOK_DIRS),$(BIN)/python -m pytest --nbval-lax -p no:cacheprovider $(NOTEBOOK_DIRS),@echo "no solutions/ yet")

# ruff, then the import contracts in pyproject.toml ([tool.importlinter]: layers, no cycles through them).
lint: setup
	$(BIN)/ruff check mlc_lab tests conftest.py
	$(BIN)/lint-imports --no-cache

lab: setup
	$(BIN)/mlc-lab lab $(LAB_ARGS)

clean:
	rm -rf _build .pytest_cache .ruff_cache .hypothesis
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
