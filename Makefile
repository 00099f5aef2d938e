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
# Where synth writes (cdktf's own variable); tests point it at a temporary folder.
OUT := $(or $(CDKTF_OUTDIR),cdktf.out)
PY := $(VENV)/bin/python
PIPENV_VERSION := 2026.10.3
ENV ?=

.PHONY: help install synth test test-fast mutation lint validate e2e-aws diff deploy regions rotate-token new-env bench bench-apps clean verify-charts \
	rehearse dev-up dev-down \
	preview-synth preview preview-destroy previews-expired previews-destroy-expired gitops-export \
	changed-envs pr-comment pr-diffs pr-environments main-release images scan-images release smoke github-environments dev-kubeconfig \
	check-clean outdated upgrade-plan

help:
	@echo "make synth [ENV=prod]    synthesize every environment (or one) into cdktf.out/"
	@echo "make test                the whole test suite (needs a RabbitMQ; starts one if it can)"
	@echo "make test-fast           the in-process tests only (no broker, Terraform, Helm, scanner, subprocess)"
	@echo "make validate            terraform init + validate of every stack whose providers install here"
	@echo "make e2e-aws ENV=qa      apply, empty re-plan and destroy of the AWS layers against moto"
	@echo "make diff ENV=qa         terraform plan of every stack of one environment, in dependency order"
	@echo "make deploy ENV=qa       cdktf deploy '<env>-*' (dependency order; REGION=… one region's stacks)"
	@echo "make regions ENV=prod    an environment's regions, the primary first"
	@echo "make rotate-token ENV=prod  a new publish token; the previous stays valid until the next rotation"
	@echo "make rehearse ENV=prod   the first deploy into an empty account, simulated step by step (no AWS needed)"
	@echo "make dev-up | dev-down   dev on a laptop: kind cluster burrow + registry localhost:5001, images, deploy, smoke"
	@echo "make verify-charts       third-party charts at their pins with Burrow's values (CHARTS_DIR=… offline)"
	@echo "make outdated            how far each chart pin lags its newest release (CHARTS_DIR=… offline)"
	@echo "make upgrade-plan ENV=prod TO=1.36  the ordered steps of a Kubernetes minor-version upgrade"
	@echo "make new-env NAME=perf ACCOUNT=123456789012  scaffold environments/perf.yaml"
	@echo "make preview-synth PR=42 | preview PR=42 | preview-destroy PR=42 | previews-expired   pull-request previews"
	@echo "make gitops-export ENV=uat [DIR=…]  the GitOps tree Flux reconciles (delivery: gitops)"
	@echo "make mutation [MUTATION=policy|contract]  mutation testing with the fast tier; prints the survivors"
	@echo "make bench | bench-apps  benchmarks (ratios against a baseline run in the same process tree)"
	@echo "delivery: make changed-envs BASE=<ref> | pr-comment | images | scan-images | release | smoke"

$(VENV)/.synced: Pipfile Pipfile.lock
	@$(PYTHON) -m pipenv --version >/dev/null 2>&1 || $(PYTHON) -m pip install -q "pipenv==$(PIPENV_VERSION)"
	$(PYTHON) -m pipenv sync --dev
	@touch $@

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

# The scanners (checkov, check-jsonschema) pin dependencies that clash with the Pipfile's,
# so they get their own virtualenv.
.venv-tools/.installed: tests/tools/requirements.txt
	$(PYTHON) -m venv .venv-tools
	.venv-tools/bin/pip install -q -r tests/tools/requirements.txt
	@touch $@

# cosmic-ray for `make mutation`, in a virtualenv of its own (not in the Pipfile); it runs .venv's pytest.
.venv-mutation/.installed: tests/tools/mutation-requirements.txt
	$(PYTHON) -m venv .venv-mutation
	.venv-mutation/bin/pip install -q -r tests/tools/mutation-requirements.txt
	@touch $@

# What synthesis and the cdktf CLI need; the scanners' virtualenv is only for `make test`.
install: $(VENV)/.synced node_modules/.package-lock.json

# Synthesis needs only the Python environment (the cdktf CLI is for diff and deploy).
# A fresh output folder, except local Terraform state (dev's, written there by `make deploy ENV=dev`):
# removing it would make the next deploy create everything again beside what already runs.
FRESH_OUT = if [ -d $(OUT) ]; then find $(OUT) -depth -mindepth 1 ! -name 'terraform.*.tfstate*' \
	\( -type d -empty -delete -o ! -type d -delete \) ; fi

synth: $(VENV)/.synced
	@$(FRESH_OUT)
	BURROW_ENV=$(ENV) BURROW_RELEASE=$(RELEASE) CDKTF_OUTDIR=$(OUT) $(PY) main.py

lint: $(VENV)/.synced
	$(VENV)/bin/ruff check constructs apps tests main.py
	$(VENV)/bin/hadolint apps/producer/Dockerfile apps/consumer/Dockerfile

# Tests run on TEST_WORKERS processes (pytest-xdist); see docs/testing.md for the groups that keep
# broker, make and Terraform tests one at a time.
TEST_WORKERS ?= 4
test: install .venv-tools/.installed lint
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder --durations=25

# The tests that need none of the tiers tests/conftest.py marks (see docs/testing.md); each test's
# setup, call and teardown get TEST_TIMEOUT seconds.
TEST_TIMEOUT ?= 180
test-fast: install
	$(PY) -m pytest -m fast --test-timeout=$(TEST_TIMEOUT) -p no:cacheprovider -q

validate: synth
	PYTHONPATH=constructs $(PY) -m burrow_tools.terraform.validate $(OUT)

e2e-aws: install
	@test -n "$(ENV)" || { echo "usage: make e2e-aws ENV=<environment>"; exit 2; }
	PYTHONPATH=constructs $(PY) -m burrow_tools.terraform.emulator "$(ENV)"

RELEASE ?=
RELEASE_PATH = $(if $(RELEASE),$(abspath $(RELEASE)),)
# The plan of every stack of one environment, dependencies first (cdktf diff takes one stack only).
diff: $(VENV)/.synced
	@test -n "$(ENV)" || { echo "usage: make diff ENV=<environment> [RELEASE=release.json]"; exit 2; }
	@rm -rf $(OUT)
	@BURROW_ENV=$(ENV) BURROW_RELEASE=$(RELEASE) CDKTF_OUTDIR=$(OUT) $(PY) main.py >/dev/null
	@PYTHONPATH=constructs $(PY) -m burrow_tools.terraform.diff $(OUT) $(ENV)

# Every stack of the environment (regions one after another, the primary first), or with REGION= one
# region's stacks only (the primary's include <env>-global). With REGION=, cdktf runs the named stacks
# in the order named (the missing-dependency flag drops its dependency scheduling) one at a time.
REGION ?=
deploy: install
	@test -n "$(ENV)" || { echo "usage: make deploy ENV=<environment> [REGION=<region>] [RELEASE=release.json]"; exit 2; }
	@stacks="'$(ENV)-*'"; if [ -n "$(REGION)" ]; then \
		stacks="$$(PYTHONPATH=constructs $(PY) -m burrow_tools.delivery.regions stacks $(ENV) $(REGION))" || exit 2; \
		stacks="$$(echo $$stacks) --ignore-missing-stack-dependencies --parallelism 1"; fi; \
	echo "BURROW_ENV=$(ENV) BURROW_RELEASE=$(RELEASE) npx cdktf deploy $$stacks --output $(OUT) $(if $(CI),--auto-approve,)"; \
	eval "BURROW_ENV=$(ENV) BURROW_RELEASE=$(RELEASE) npx cdktf deploy $$stacks --output $(OUT) $(if $(CI),--auto-approve,)"

# The first deploy of an empty account, simulated in the order cdktf runs it: at every release, what the
# API server and the controllers need then (kinds, namespaces, Secrets, IRSA roles, a reachable API).
rehearse: $(VENV)/.synced
	@test -n "$(ENV)" || { echo "usage: make rehearse ENV=<environment> [RELEASE=release.json]"; exit 2; }
	@BURROW_RELEASE=$(RELEASE) PYTHONPATH=constructs $(PY) -m burrow_tools.rehearse "$(ENV)"

# A new bearer token for the public producer; the previous one stays valid until the next rotation.
rotate-token: $(VENV)/.synced
	@test -n "$(ENV)" || { echo "usage: make rotate-token ENV=<environment> [DRY_RUN=1]"; exit 2; }
	@PYTHONPATH=constructs $(PY) -m burrow_tools.rotate_token "$(ENV)" $(if $(DRY_RUN),--dry-run,)

# An environment's regions, the primary first (the order deploys go in).
regions: $(VENV)/.synced
	@test -n "$(ENV)" || { echo "usage: make regions ENV=<environment>"; exit 2; }
	@PYTHONPATH=constructs $(PY) -m burrow_tools.delivery.regions regions $(ENV)

# The third-party charts at their pinned versions, rendered with the exact values Burrow passes.
# Needs the chart repositories, or CHARTS_DIR with the charts (.tgz or unpacked sources).
CHARTS_DIR ?=
verify-charts: synth
	PYTHONPATH=constructs $(PY) -m burrow_tools.charts $(OUT) $(if $(CHARTS_DIR),--charts-dir $(CHARTS_DIR),)

# How far each chart pin (constructs/burrow/pins.py) lags the newest release of its chart, from
# CHARTS_DIR (repository index.yaml files, Git mirrors of the charts' sources, packaged charts) or
# the chart repositories themselves. Fails when a pin lags more than 183 days.
outdated: $(VENV)/.synced
	@PYTHONPATH=constructs $(PY) -m burrow_tools.outdated $(if $(CHARTS_DIR),--charts-dir $(CHARTS_DIR),)

# The ordered steps that move an environment's clusters to Kubernetes TO, one minor version at a time
# from FROM (default: the version the environment file sets). docs/upgrades.md is the runbook.
TO ?=
FROM ?=
upgrade-plan: $(VENV)/.synced
	@test -n "$(ENV)" -a -n "$(TO)" || { echo "usage: make upgrade-plan ENV=<environment> TO=<kubernetes version>"; exit 2; }
	@PYTHONPATH=constructs $(PY) -m burrow_tools.upgrade_plan "$(ENV)" "$(TO)" $(if $(FROM),--from $(FROM),) --check
	@$(FRESH_OUT)
	@BURROW_ENV=$(ENV) CDKTF_OUTDIR=$(OUT) $(PY) main.py >/dev/null
	@PYTHONPATH=constructs $(PY) -m burrow_tools.upgrade_plan "$(ENV)" "$(TO)" $(if $(FROM),--from $(FROM),) --outdir $(OUT)

# Pull-request previews (burrow.previews): pr-<n>-app in the previews' host cluster (qa).
PREVIEW_VARS = BURROW_PREVIEW=$(PR) BURROW_PREVIEW_HOST=$(HOST) BURROW_PREVIEW_COMMIT=$(COMMIT) BURROW_RELEASE=$(RELEASE)
PREVIEW_USAGE = { echo "usage: make $@ PR=<pull request number> [HOST=<env>] [RELEASE=release.json] [COMMIT=<sha>]"; exit 2; }

preview-synth: $(VENV)/.synced
	@test -n "$(PR)" || $(PREVIEW_USAGE)
	@$(FRESH_OUT)
	$(PREVIEW_VARS) CDKTF_OUTDIR=$(OUT) $(PY) main.py

preview: install
	@test -n "$(PR)" || $(PREVIEW_USAGE)
	$(PREVIEW_VARS) npx cdktf deploy 'pr-$(PR)-app' --output $(OUT) $(if $(CI),--auto-approve,)
	@$(PREVIEW_VARS) PYTHONPATH=constructs $(PY) -m burrow_tools.delivery.previews summary $(PR) $(if $(HOST),--host $(HOST),) > preview.md
	@cat preview.md

preview-destroy: install
	@test -n "$(PR)" || $(PREVIEW_USAGE)
	$(PREVIEW_VARS) npx cdktf destroy 'pr-$(PR)-app' --output $(OUT) --auto-approve
	PYTHONPATH=constructs $(PY) -m burrow_tools.delivery.previews forget $(PR) $(if $(HOST),--host $(HOST),)

previews-expired: $(VENV)/.synced
	@PYTHONPATH=constructs $(PY) -m burrow_tools.delivery.previews expired $(if $(HOST),--host $(HOST),)

previews-destroy-expired: install
	@expired=$$($(MAKE) -s --no-print-directory previews-expired HOST=$(HOST)) || exit 1; \
	echo "expired previews: $${expired:-none}"; \
	for pr in $$expired; do $(MAKE) --no-print-directory preview-destroy PR=$$pr HOST=$(HOST) || exit 1; done

# delivery: gitops: the tree Flux reconciles, checked (kustomize build, strict validation, no Secret);
# DIR=<checkout of the GitOps repository>/clusters/<env> also copies it there.
gitops-export: $(VENV)/.synced
	@test -n "$(ENV)" || { echo "usage: make gitops-export ENV=<environment> [DIR=<folder>]"; exit 2; }
	@PYTHONPATH=constructs $(PY) -m burrow_tools.gitops --check $(ENV)
	@$(FRESH_OUT)
	@BURROW_ENV=$(ENV) CDKTF_OUTDIR=$(OUT) $(PY) main.py >/dev/null
	@PYTHONPATH=constructs $(PY) -m burrow_tools.gitops $(OUT) $(ENV) $(DIR)

# The folder new-env writes to and validates against (tests point it at a copy).
ENVIRONMENTS ?= environments
new-env: install
	@test -n "$(NAME)" -a -n "$(ACCOUNT)" || { echo "usage: make new-env NAME=<environment> ACCOUNT=<12-digit AWS account id>"; exit 2; }
	PYTHONPATH=constructs $(PY) -m burrow_tools.scaffold "$(NAME)" "$(ACCOUNT)" "$(ENVIRONMENTS)"

# Mutation testing (not part of CI): cosmic-ray rewrites the guardrails (policy) or the producer's
# publish contract (contract) one mutation at a time, in place, and runs the fast tests that cover
# them (policy: only those that execute the changed statement, tests/tools/mutation_tests.py); a
# mutant that no test kills is printed with its diff. Run nothing else in this checkout
# meanwhile. The producer's publishing threads are out of scope (the broker tiers test them).
MUTATION ?= contract policy
mutation: install .venv-mutation/.installed
	@mkdir -p .cache; for target in $(MUTATION); do \
	  session=.cache/mutation-$$target.sqlite; \
	  .venv-mutation/bin/cosmic-ray init tests/tools/mutation-$$target.toml $$session --force || exit 1; \
	  .venv-mutation/bin/python tests/tools/mutation_scope.py tests/tools/mutation-$$target.toml $$session || exit 1; \
	  $(PY) tests/tools/mutation_tests.py map tests/tools/mutation-$$target.toml .cache/mutation-$$target.map.json || exit 1; \
	  .venv-mutation/bin/cosmic-ray exec tests/tools/mutation-$$target.toml $$session; status=$$?; \
	  $(PY) tests/tools/mutation_tests.py stop .cache/mutation-$$target.map.json; [ $$status = 0 ] || exit 1; \
	  git diff --quiet -- constructs apps || { echo "mutation: the source was left changed"; exit 1; }; \
	  echo "== surviving mutants: $$target"; .venv-mutation/bin/cr-report --surviving-only --show-diff $$session; \
	done

bench: install
	$(PY) tests/bench/bench_synth.py

bench-apps: install
	$(PY) tests/bench/bench_apps.py

# --- delivery (the GitHub workflows call only these) ---------------------------------------
BASE ?= origin/main
# RELEASE: production synthesizes only with one (both sides use the same, so images never differ).
changed-envs: install
	@rm -rf .cache/base && git worktree add -f --detach .cache/base $(BASE) >/dev/null
	@cd .cache/base && BURROW_RELEASE=$(RELEASE_PATH) CDKTF_OUTDIR=../base.out ../../$(PY) main.py >/dev/null
	@rm -rf cdktf.out && BURROW_RELEASE=$(RELEASE_PATH) $(PY) main.py >/dev/null
	@PYTHONPATH=constructs $(PY) -m burrow_tools.delivery.changed .cache/base.out cdktf.out
	@git worktree remove -f .cache/base

pr-comment: install
	@test -n "$(ENV)" -a -n "$(FILE)" || { echo "usage: make pr-comment ENV=<env|preview> FILE=<diff or preview.md>"; exit 2; }
	PYTHONPATH=constructs $(PY) -m burrow_tools.delivery.comment "$(ENV)" "$(FILE)"

REGISTRY ?=
TAG ?= $(shell git rev-parse --short=12 HEAD)
TRIVY_IMAGE := aquasec/trivy:0.57.1
images:
	@test -n "$(REGISTRY)" || { echo "usage: make images REGISTRY=<registry> [TAG=<tag>]"; exit 2; }
	for svc in producer consumer; do \
	  docker buildx build apps -f apps/$$svc/Dockerfile --tag $(REGISTRY)/burrow/$$svc:$(TAG) \
	    --sbom=true --provenance=mode=max --cache-from type=gha,scope=$$svc --cache-to type=gha,mode=max,scope=$$svc \
	    --push || exit 1; \
	done

scan-images:
	@test -n "$(REGISTRY)" || { echo "usage: make scan-images REGISTRY=<registry> [TAG=<tag>]"; exit 2; }
	for svc in producer consumer; do \
	  docker run --rm -v $$HOME/.docker:/root/.docker:ro $(TRIVY_IMAGE) image --exit-code 1 \
	    --severity CRITICAL --ignore-unfixed $(REGISTRY)/burrow/$$svc:$(TAG) || exit 1; \
	done

release: install
	@test -n "$(REGISTRY)" || { echo "usage: make release REGISTRY=<registry> [TAG=<tag>]"; exit 2; }
	PYTHONPATH=constructs $(PY) -m burrow_tools.delivery.release record "$(REGISTRY)" "$(TAG)" release.json

smoke: install
	@test -n "$(ENV)" || { echo "usage: make smoke ENV=<environment> [REGION=<region>] [PR=<preview in its cluster>]"; exit 2; }
	PYTHONPATH=constructs $(PY) -m burrow_tools.delivery.smoke "$(ENV)" $(PR) $(if $(REGION),--region $(REGION),)

# plan.yml: the pull request's environment files over the base branch's, so that the base branch's
# (trusted) code plans them. PR_DIR is a checkout of the pull request holding environments/; only
# regular files and folders are taken (a link could point the trusted code at a file of the runner).
PR_DIR ?=
pr-environments:
	@test -d "$(PR_DIR)/environments" || { echo "usage: make pr-environments PR_DIR=<checkout of the pull request>"; exit 2; }
	@links="$$(find "$(PR_DIR)/environments" ! -type f ! -type d)"; if [ -n "$$links" ]; then \
	  echo "refused: only regular files may change under environments/, not: $$links"; exit 2; fi
	@rm -rf environments && cp -R "$(PR_DIR)/environments" environments && rm -rf "$(PR_DIR)"
	@git status --short -- environments

# Every environment whose synthesized stacks differ from BASE: a cdktf diff, posted to the PR.
# RELEASE: the release main last recorded (make main-release), since production plans only with one.
pr-diffs: install
	@test -n "$(RELEASE)" || { echo "usage: make pr-diffs BASE=<ref> RELEASE=<release.json> (production synthesizes only with a release: make main-release)"; exit 2; }
	@mkdir -p .cache; for env in $$($(MAKE) -s --no-print-directory changed-envs BASE=$(BASE) RELEASE=$(RELEASE)); do \
	  echo "== $$env"; \
	  $(MAKE) -s --no-print-directory diff ENV=$$env RELEASE=$(RELEASE) > .cache/diff-$$env.txt 2>&1; status=$$?; \
	  cat .cache/diff-$$env.txt; \
	  PYTHONPATH=constructs $(PY) -m burrow_tools.delivery.comment "$$env" .cache/diff-$$env.txt || exit 1; \
	  [ $$status -eq 0 ] || exit $$status; \
	done

# plan.yml: release.json as main's newest successful images run recorded it (the digests the next
# deploy promotes), so that a plan of production shows only what the environment files change.
# Needs the gh CLI with a token that may read the repository's actions (GH_TOKEN).
main-release:
	@run="$$(gh run list --workflow images.yml --branch main --status success --limit 1 \
	  --json databaseId,headSha --jq '.[0] | "\(.databaseId) release-\(.headSha)"')"; \
	test -n "$$run" || { echo "main has no successful images run: no release to plan production with"; exit 2; }; \
	set -- $$run; rm -f release.json; gh run download "$$1" --name "$$2" --dir . && echo "release.json: $$2"

# Creates or updates the GitHub environments (approvals for preprod and prod) from
# .github/environments.json; needs the gh CLI authenticated as a repository admin.
github-environments: install
	PYTHONPATH=constructs $(PY) -m burrow_tools.delivery.environments .github/environments.json

# The dev cluster's kubeconfig, from the deploy workflow's DEV_KUBECONFIG secret.
dev-kubeconfig:
	@test -n "$$KUBECONFIG_CONTENT" || { echo "KUBECONFIG_CONTENT is empty"; exit 2; }
	@mkdir -p $$HOME/.kube && umask 077 && printf '%s\n' "$$KUBECONFIG_CONTENT" > $$HOME/.kube/config

# --- dev on a laptop (needs Docker, kind $(KIND_VERSION) and kubectl; none of them runs on the build machines) --
# A kind cluster `burrow` (kubeconfig context kind-burrow) from environments/kind/burrow.yaml, a registry container
# on localhost:5001 that the cluster's nodes pull from, the two images built from apps/ and pushed there as
# localhost:5001/burrow/<service>:dev, then `make deploy ENV=dev` and `make smoke ENV=dev`.
KIND_VERSION := v0.32.0
KIND_CONFIG := environments/kind/burrow.yaml
KIND_CLUSTER := burrow
DEV_REGISTRY_NAME := burrow-registry
DEV_REGISTRY_PORT := 5001
DEV_REGISTRY := localhost:$(DEV_REGISTRY_PORT)
DEV_TAG := dev
REGISTRY_IMAGE := registry:3
dev-up: install
	@for tool in docker kind kubectl; do command -v $$tool >/dev/null || { echo "dev-up needs $$tool on the PATH"; exit 2; }; done
	@kind version | grep -q "kind $(KIND_VERSION) " || { echo "dev-up is tested with kind $(KIND_VERSION): $$(kind version)"; exit 2; }
	@if [ "$$(docker inspect -f '{{.State.Running}}' $(DEV_REGISTRY_NAME) 2>/dev/null)" != true ]; then \
	  docker run -d --restart=always -p 127.0.0.1:$(DEV_REGISTRY_PORT):5000 --network bridge \
	    --name $(DEV_REGISTRY_NAME) $(REGISTRY_IMAGE); fi
	@kind get clusters | grep -qx $(KIND_CLUSTER) || kind create cluster --name $(KIND_CLUSTER) --config $(KIND_CONFIG)
	@for node in $$(kind get nodes --name $(KIND_CLUSTER)); do \
	  docker exec $$node mkdir -p /etc/containerd/certs.d/$(DEV_REGISTRY) && \
	  printf '[host."http://$(DEV_REGISTRY_NAME):5000"]\n' | docker exec -i $$node cp /dev/stdin /etc/containerd/certs.d/$(DEV_REGISTRY)/hosts.toml; \
	done
	@[ "$$(docker inspect -f '{{json .NetworkSettings.Networks.kind}}' $(DEV_REGISTRY_NAME))" != null ] || \
	  docker network connect kind $(DEV_REGISTRY_NAME)
	for svc in producer consumer; do \
	  docker build apps -f apps/$$svc/Dockerfile --tag $(DEV_REGISTRY)/burrow/$$svc:$(DEV_TAG) && \
	  docker push $(DEV_REGISTRY)/burrow/$$svc:$(DEV_TAG) || exit 1; \
	done
	$(MAKE) --no-print-directory deploy ENV=dev
	$(MAKE) --no-print-directory smoke ENV=dev

# Removes the kind cluster, the registry container and dev's local Terraform state (it described that cluster).
dev-down:
	-kind delete cluster --name $(KIND_CLUSTER)
	-docker rm -f $(DEV_REGISTRY_NAME)
	rm -f $(OUT)/stacks/dev-*/terraform.dev-*.tfstate*

# Fails when a tracked file changed or appeared during the run (e.g. a regenerated snapshot).
check-clean:
	@if git status --porcelain --untracked-files=all | grep .; then echo "files changed during CI: commit them in the PR"; exit 1; fi

clean:
	rm -rf cdktf.out .pytest_cache
