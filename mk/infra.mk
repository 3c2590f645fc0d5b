# Checks of template.yaml: `make infra-check` (from the Makefile that includes this file) or,
# standalone, `make -f mk/infra.mk infra-check`. Starts from nothing: each tool gets its own
# virtualenv (aws-sam-cli and checkov pin conflicting boto3/botocore ranges), created on first use
# and re-created when a pinned version below changes. Run from the repository root.
#
#   infra-check     sam validate --lint, cfn-lint, checkov, sam build (all four must pass)
#   infra-test      pytest -m infra (assertions on template.yaml; needs the project .venv)
#   infra-clean     removes the tool virtualenvs and .aws-sam

# Included by another Makefile, this file must not become its default goal.
INFRA_MK_INCLUDED := $(filter-out $(lastword $(MAKEFILE_LIST)),$(MAKEFILE_LIST))
INFRA_PREVIOUS_DEFAULT_GOAL := $(.DEFAULT_GOAL)

INFRA_PYTHON ?= python3
AWS_SAM_CLI_VERSION ?= 1.170.0
# The cfn-lint that aws-sam-cli $(AWS_SAM_CLI_VERSION) resolves to (it allows >=1.52,<1.59); pinned
# so that `sam validate --lint` and `cfn-lint` are the same linter and CI does not drift.
CFN_LINT_VERSION ?= 1.58.0
CHECKOV_VERSION ?= 3.3.30

SAM_VENV ?= .venv-sam
CHECKOV_VENV ?= .venv-checkov
SAM ?= $(SAM_VENV)/bin/sam
CFN_LINT ?= $(SAM_VENV)/bin/cfn-lint
CHECKOV ?= $(CHECKOV_VENV)/bin/checkov
INFRA_PYTEST ?= .venv/bin/python -m pytest
TEMPLATE ?= template.yaml
SAM_BUILD_DIR ?= .aws-sam/build

INFRA_PIP = -m pip install --quiet --disable-pip-version-check
# No telemetry from CI; checkov never calls Prisma Cloud (--skip-download).
INFRA_ENV = SAM_CLI_TELEMETRY=0

SAM_STAMP := $(SAM_VENV)/.installed-sam-$(AWS_SAM_CLI_VERSION)-cfn-lint-$(CFN_LINT_VERSION)
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-checkov-$(CHECKOV_VERSION)

# `sam build` of a python3.13 function or layer runs the python3.13 interpreter it finds on PATH
# (no containers here). With pyenv, the newest installed 3.13.x is put first on PATH for that one
# command (pyenv's shims alone only answer for the active version); without pyenv, whatever
# python3.13 is on PATH is used, and the build stops with a clear message when there is none.
INFRA_PY313_DIR = $(shell command -v pyenv >/dev/null 2>&1 \
	&& v=$$(pyenv versions --bare 2>/dev/null | grep -E '^3\.13(\.[0-9]+)?$$' | sort -V | tail -n 1) \
	&& [ -n "$$v" ] && echo "$$(pyenv root)/versions/$$v/bin")

.PHONY: infra-check infra-validate infra-lint infra-checkov infra-build infra-test infra-clean \
	.venv-sam .venv-checkov

infra-check: infra-validate infra-lint infra-checkov infra-build
	@echo "infra-check: template.yaml passed sam validate --lint, cfn-lint, checkov and sam build"

.venv-sam: $(SAM_STAMP)
.venv-checkov: $(CHECKOV_STAMP)

$(SAM_STAMP):
	@echo "creating $(SAM_VENV) (aws-sam-cli $(AWS_SAM_CLI_VERSION), cfn-lint $(CFN_LINT_VERSION))"
	@rm -f $(SAM_VENV)/.installed-*
	$(INFRA_PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python $(INFRA_PIP) "aws-sam-cli==$(AWS_SAM_CLI_VERSION)" "cfn-lint==$(CFN_LINT_VERSION)"
	@touch $@

$(CHECKOV_STAMP):
	@echo "creating $(CHECKOV_VENV) (checkov $(CHECKOV_VERSION))"
	@rm -f $(CHECKOV_VENV)/.installed-*
	$(INFRA_PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python $(INFRA_PIP) "checkov==$(CHECKOV_VERSION)"
	@touch $@

infra-validate: $(SAM_STAMP)
	$(INFRA_ENV) $(SAM) validate --lint --template-file $(TEMPLATE)

# docs/vault-bucket.yaml: the replica ("vault") bucket's own small template, deployed by hand.
VAULT_TEMPLATE ?= docs/vault-bucket.yaml

infra-lint: $(SAM_STAMP)
	$(CFN_LINT) -- $(TEMPLATE) $(VAULT_TEMPLATE)

# Suppressions live in the template, next to the resource, as Metadata.checkov.skip with a reason.
infra-checkov: $(CHECKOV_STAMP)
	$(CHECKOV) -f $(TEMPLATE) --framework cloudformation --quiet --compact --skip-download

infra-build: $(SAM_STAMP)
	@py313_dir="$(INFRA_PY313_DIR)"; \
	if [ -n "$$py313_dir" ]; then PATH="$$py313_dir:$$PATH"; export PATH; fi; \
	if ! python3.13 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' >/dev/null 2>&1; then \
		echo "infra-build: sam build needs python3.13 on PATH (the functions' runtime is python3.13)." >&2; \
		echo "  Install Python 3.13 (actions/setup-python, deadsnakes, or 'pyenv install 3.13') and retry." >&2; \
		exit 1; \
	fi; \
	echo "$(SAM) build (python3.13 = $$(command -v python3.13))"; \
	$(INFRA_ENV) $(SAM) build --template-file $(TEMPLATE) --build-dir $(SAM_BUILD_DIR) --cached --parallel

infra-test:
	$(INFRA_PYTEST) -m infra tests/infra

infra-clean:
	rm -rf $(SAM_VENV) $(CHECKOV_VENV) .aws-sam

ifneq ($(strip $(INFRA_MK_INCLUDED)),)
.DEFAULT_GOAL := $(INFRA_PREVIOUS_DEFAULT_GOAL)
endif
