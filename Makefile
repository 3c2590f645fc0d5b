# Two commands do everything on a fresh machine (Python, pip, git, make):
#   make demo   the whole product on an embedded local AWS (a moto server on 127.0.0.1)
#   make test   every check: lint, types, schema, unit/integration/e2e tests, template checks
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help venv lint typecheck schema unit integration e2e pytest test demo bench clean

help:
	@echo "make demo   - run the whole backup/validate/restore cycle on an embedded moto server"
	@echo "make test   - every check (ruff, mypy, schema, pytest with coverage, template checks)"
	@echo "make bench  - throughput and memory benchmarks against the strict local Cognito"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check layers functions tools tests scripts
	$(VENV)/bin/ruff format --check layers functions tools tests scripts

typecheck: $(STAMP)
	$(VENV)/bin/mypy
	for f in functions/*/app.py; do $(VENV)/bin/mypy "$$f" || exit 1; done
	MYPYPATH=tests/deployed:tests $(VENV)/bin/mypy --strict --ignore-missing-imports \
		tests/deployed/iam_policy.py tests/deployed/iam_calls.py tests/deployed/call_recorder.py \
		tests/deployed/cfn_roles.py tests/deployed/least_privilege.py

schema: $(STAMP)
	$(PY) scripts/gen_schema.py --check

# Test files run on two workers (pytest-xdist), each file whole on one worker: module-scoped
# fixtures (a moto server, the pip-installed Lambda layer) are made once. PYTEST_WORKERS=0 runs
# everything in this process.
PYTEST_WORKERS ?= 2
pytest: $(STAMP)
	$(VENV)/bin/pytest --cov --cov-branch --cov-report=term -n $(PYTEST_WORKERS) --dist loadfile

# Every check; the template tool chain (its own virtualenvs, sam build) runs beside the tests.
# Each target's output is printed whole when it ends.
test: $(STAMP)
	$(MAKE) -j3 --output-sync=target lint typecheck schema pytest infra-check

demo: $(STAMP)
	$(VENV)/bin/cognito-backup demo

bench: $(STAMP)
	$(PY) scripts/bench.py
	$(PY) scripts/bench_incremental.py
	$(PY) scripts/bench_forget.py

clean:
	rm -rf $(VENV) .venv-sam .venv-checkov .aws-sam .pytest_cache .mypy_cache .ruff_cache .coverage

-include mk/infra.mk
