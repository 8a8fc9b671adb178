# The two commands a new developer needs: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: run test install prereqs bench bench-sample drop load-products fmt clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11+ is required (found $$($(PYTHON) --version 2>&1))."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

install: $(VENV)/.installed

prereqs: install
	@$(PY) -m devstack.prereqs

run: prereqs
	PORT=$(PORT) $(PY) -m devstack.run

test: prereqs
	$(PY) -m pytest -q
	@if command -v terraform >/dev/null; then terraform fmt -check -recursive -diff infra && echo "terraform fmt: clean"; \
	 else echo "terraform not installed: skipped terraform fmt -check"; fi

bench-sample: prereqs
	$(PY) -m bench.sample_latency

clean:
	rm -rf $(VENV) .pytest_cache local-results reports

load-products: install
	$(PY) -m devstack.load_products $(FILE)
