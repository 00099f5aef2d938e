# Burrow's commands. `make synth` and `make test` work on a fresh clone: they create the
# Python environment (pipenv, .venv/) and the Node one (cdktf-cli in node_modules/) first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
# The Pipfile's [[source]] reads its URL from here, so no registry host is written into the
# repo: pip's own configured index, else pip's built-in default.
PIP_INDEX_URL ?= $(shell $(PYTHON) -m pip config get global.index-url 2>/dev/null || $(PYTHON) -c 'from pip._internal.models.index import PyPI; print(PyPI.simple_url)')
export PIP_INDEX_URL
export PIPENV_VENV_IN_PROJECT := 1
export PIPENV_YES := 1
export PIPENV_NOSPIN := 1
export PIPENV_VERBOSITY := -1
# jsii flags Node 20 as end-of-life on every run; Burrow states its Node requirement in the README.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_RUNTIME_PACKAGE_CACHE := enabled
export CHECKPOINT_DISABLE := 1

VENV := .venv
PY := $(VENV)/bin/python
PIPENV_VERSION := 2026.10.3
ENV ?=

.PHONY: help install synth test lint validate e2e-aws diff deploy new-env bench bench-apps clean

help:
	@echo "make synth [ENV=prod]    synthesize every environment (or one) into cdktf.out/"
	@echo "make test                the whole test suite (needs a RabbitMQ; starts one if it can)"
	@echo "make validate            terraform init + validate of every stack whose providers install here"
	@echo "make e2e-aws ENV=qa      apply, empty re-plan and destroy of the AWS layers against moto"
	@echo "make diff ENV=qa         cdktf diff of one environment's stacks"
	@echo "make deploy ENV=qa       cdktf deploy '<env>-*' (dependency order)"
	@echo "make new-env NAME=perf   scaffold environments/perf.yaml from the template"
	@echo "make bench | bench-apps  benchmarks (ratios against a baseline run in the same process tree)"

$(VENV)/.synced: Pipfile Pipfile.lock
	@$(PYTHON) -m pipenv --version >/dev/null 2>&1 || $(PYTHON) -m pip install -q "pipenv==$(PIPENV_VERSION)"
	$(PYTHON) -m pipenv sync --dev
	@touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

# checkov pins dependencies that clash with the Pipfile's, so it gets its own virtualenv.
.venv-checkov/.installed: tests/checkov/requirements.txt
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/pip install -q -r tests/checkov/requirements.txt
	@touch $@

install: $(VENV)/.synced node_modules/.package-lock.json .venv-checkov/.installed

synth: install
	@rm -rf cdktf.out
	BURROW_ENV=$(ENV) $(PY) main.py

lint: install
	$(VENV)/bin/ruff check constructs apps tests main.py
	$(VENV)/bin/hadolint apps/producer/Dockerfile apps/consumer/Dockerfile

test: install lint
	$(PY) -m pytest

validate: synth
	PYTHONPATH=constructs $(PY) -m burrow.terraform.validate cdktf.out

e2e-aws: install
	@test -n "$(ENV)" || { echo "usage: make e2e-aws ENV=<environment>"; exit 2; }
	PYTHONPATH=constructs $(PY) -m burrow.terraform.emulator "$(ENV)"

diff deploy: install
	@test -n "$(ENV)" || { echo "usage: make $@ ENV=<environment>"; exit 2; }
	BURROW_ENV=$(ENV) npx cdktf $@ '$(ENV)-*'

new-env: install
	@test -n "$(NAME)" || { echo "usage: make new-env NAME=<environment>"; exit 2; }
	PYTHONPATH=constructs $(PY) -m burrow.scaffold "$(NAME)"

bench: install
	$(PY) tests/bench/bench_synth.py

bench-apps: install
	$(PY) tests/bench/bench_apps.py

clean:
	rm -rf cdktf.out .pytest_cache
