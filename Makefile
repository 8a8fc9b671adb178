# The two commands a new developer needs: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: run test test-unit lint docs install prereqs scan bench bench-family bench-sample bench-capacity bench-context drop load-products clean report traffic fuzz evaluate reset promote caps
export TF_CLI_CONFIG_FILE ?= /dev/null

$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-report.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11+ is required (found $$($(PYTHON) --version 2>&1))."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

install: $(VENV)/.installed

prereqs: install
	@$(PY) -m devstack.prereqs
	@$(PY) -m tools.report.browser  # Debian's Chromium for the report's screenshot test (installs if root)

run: prereqs
	PORT=$(PORT) $(PY) -m devstack.run

# ruff and import-linter (pyproject.toml): lint, format and the import contracts (layers only point
# down, no cycles) are part of the suite, so CI enforces them.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

# The documentation site (mkdocs.yml, docs/) into site/; --strict fails on any warning (a page
# missing from the nav, a broken link or anchor). MkDocs and the Material theme go into .venv.
$(VENV)/.docs-installed: requirements-docs.txt $(VENV)/.installed
	$(PY) -m pip install --quiet -r requirements-docs.txt
	@touch $@

docs: $(VENV)/.docs-installed
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

# pytest-xdist workers for `make test`, each with its own emulators and gateway (session fixtures of
# tests/conftest.py, started when its first test needs them). --dist loadfile keeps a file's tests on
# one worker, so a module fixture (a stack with traffic, a second gateway) starts once. TEST_WORKERS=0:
# one process, as before. (--dist loadgroup cannot be used: pytest 9.2 ignores the node ids it rewrites.)
TEST_WORKERS ?= 2

# The pure tests (tests/unit/, marker `unit`): no emulator, no server, no Java; the inner loop, on
# every core (-n auto), each test handed to whichever worker is free. The `statistical` grid (a
# policy's probabilities against a million draws for every case) is left to make test: one case per
# variant stays here.
test-unit: install
	$(PY) -m pytest -q -n auto --dist worksteal -m "not statistical" tests/unit

test: prereqs lint docs
	$(PY) -m pytest -q -rs -n $(TEST_WORKERS) --dist loadfile
	@if command -v terraform >/dev/null; then terraform fmt -check -recursive -diff infra && echo "terraform fmt: clean"; \
	 else echo "terraform not installed: skipped terraform fmt -check"; fi
	bash infra/scan.sh

# schemathesis over infra/openapi.json against a fresh local stack (devstack/fuzz.py): bounded
# examples, a fixed seed, at most 3 minutes; fails on any server error or answer off the spec.
# schemathesis lives in its own virtualenv, .venv-fuzz: many packages nothing else needs.
SCHEMATHESIS_VERSION := 4.32.5
.venv-fuzz/.schemathesis-$(SCHEMATHESIS_VERSION):
	$(PYTHON) -m venv .venv-fuzz
	.venv-fuzz/bin/python -m pip install --quiet "schemathesis==$(SCHEMATHESIS_VERSION)"
	@touch $@

fuzz: prereqs .venv-fuzz/.schemathesis-$(SCHEMATHESIS_VERSION)
	$(PY) -m devstack.fuzz

# checkov over infra/, in its own virtualenv (.venv-checkov): no failed check, skips justified inline.
scan:
	bash infra/scan.sh

# The bandit benchmark: table and plots into reports/bench/ (about 17 min on 2 cores), then a small
# fixed sample of the generated family's test split (bench/family: 2 environments per class).
bench: install
	$(PY) -m pip install --quiet -r requirements-bench.txt
	$(PY) -m bench.run --publish
	$(PY) -m bench.family.run --sample --parts cpa,customer --policies thompson,klucb,greedy,epsilon,ucb --publish

# The generated family's full test split (bench/README.md, "Generated family"): the samplers of the
# default's verdict (docs/family.md#verdict; FAMILY_POLICIES=... for others, the variants included)
# and every customer agent, tables per class and plots into reports/family/test/, copied to
# bench/results/family/. Resumable: finished runs are kept in reports/family/. WORKERS=2 for two cores.
WORKERS ?= 1
FAMILY_POLICIES ?= thompson,klucb,greedy,ucb,epsilon,random,thompson-plain
bench-family: install
	$(PY) -m pip install --quiet -r requirements-bench.txt
	nice -n 10 $(PY) -m bench.family.run --split test --parts cpa,lock_on,customer --policies $(FAMILY_POLICIES) \
		--workers $(WORKERS) --publish

# Click context and caps (issue 24): the contextual, capped and E1-context environments, 100 paired
# seeds, table and plots into reports/bench/ (runs kept in reports/bench/context-runs/; hours on 2 shared cores).
bench-context: install
	$(PY) -m pip install --quiet -r requirements-bench.txt
	$(PY) -m bench.context_bench --publish

# /sample latency against the bare Firestore work, at 3 to 100 candidates; then /sample with and without the
# decision log records (two gateways, requests alternating), one run.
bench-sample: prereqs
	$(PY) -m bench.sample_latency

# Firestore reads, writes, hot documents, index limits and cost per million clicks of the real
# request code under the declared traffic profile, replayed in virtual time (a few minutes).
bench-capacity: prereqs
	$(PY) -m bench.capacity

clean:
	rm -rf $(VENV) .venv-fuzz .pytest_cache local-results reports site

# The report page (reports/report.html, charts beside it) from the decision log: the running `make run`'s
# DuckDB file, or the BigQuery dataset of --project / GOOGLE_CLOUD_PROJECT when no stack runs; with the
# learning policies' lift over the holdout and its SRM check; options: make report ARGS="--since 24h --tenant adnet",
# ARGS="--firestore" (the documents instead, without the holdout's sections).
report: install
	$(PY) -m tools.report $(ARGS)

# Off-policy evaluation of every CPA sampler (IPS, SNIPS, doubly robust, 95 % intervals) on the decisions of
# the decision log (the running `make run`'s, or --project's BigQuery dataset); options:
# make evaluate ARGS="--since 24h --max-clicks 20000", ARGS="--firestore", ARGS="--export log.jsonl".
evaluate: install
	$(PY) -m tools.evaluate $(ARGS)

# Switch a tenant to its shadow challenger only when the challenger's doubly robust lower bound beats the live
# policy on the decision log; records who, when and the evidence: make promote ARGS="--tenant adnet --dry-run".
promote: install
	$(PY) -m tools.promote $(ARGS)

# Simulated clicks and customers sent to the running `make run` (seeded), so the report has something to show.
traffic: install
	$(PY) -m tools.traffic $(ARGS)

# Archive then zero one offer's or segment's statistics in the running `make run` (or --project):
# make reset ARGS="offer=42"; make reset ARGS='"segment=30-44|Europa|M" --reason "new creative"'.
reset: install
	$(PY) -m tools.reset $(ARGS)

# Set, remove or list a tenant's per-offer daily caps in the running `make run` (or --project):
# make caps ARGS="offer=42 --conversions 100 --tz Europe/Paris"; make caps ARGS="--list --tenant adnet".
caps: install
	$(PY) -m tools.caps $(ARGS)

load-products: install
	$(PY) -m tools.load_products $(FILE)

# Drop a client CSV into the running stack's inbox (`make run` in another terminal), wait for its
# batch job and copy the result and error CSVs to local-results/.
drop: install
	@test -n "$(FILE)" -a -n "$(CLIENT)" || { echo "usage: make drop FILE=<csv> CLIENT=<client>"; exit 1; }
	$(PY) -m tools.drop --file $(FILE) --client $(CLIENT)

# Batch scoring: a 1M-row file on the local batch engine (rows/s per worker, peak memory per task,
# Firestore writes per 100 rows) and a 470k-row file inside score_upload, against fresh emulators
# (about 5 min); `python -m bench.batch_throughput --ramp-model` prints the production arithmetic.
bench-batch: prereqs
	$(PY) -m bench.batch_throughput
