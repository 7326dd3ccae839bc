# Two commands on a fresh machine:  `make run` (start everything)  and  `make test` (whole suite).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
FRONTEND := frontend

.PHONY: run install install-dev dashboard dist browser test test-frontend test-image soak clean

run: install dashboard
	$(BIN)/mlservice serve

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

# Tests cover every backend: the distributed extra (Celery, Redis, PostgreSQL driver) and the
# gpu extra (PyTorch; on a machine without CUDA its CPU path is what runs).
install-dev: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev,distributed,gpu]"

# The dashboard is a static export served by `mlservice serve`; rebuilt only when its sources change.
dashboard:
	@if [ -f $(FRONTEND)/package.json ]; then \
		$(MAKE) --no-print-directory $(FRONTEND)/out/index.html; \
	else echo "no dashboard sources: serving the API only"; fi

$(FRONTEND)/node_modules/.package-lock.json: $(FRONTEND)/package-lock.json
	cd $(FRONTEND) && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund

$(FRONTEND)/out/index.html: $(FRONTEND)/node_modules/.package-lock.json $(shell find $(FRONTEND)/src $(FRONTEND)/app $(FRONTEND)/public -type f 2>/dev/null) $(wildcard $(FRONTEND)/*.ts $(FRONTEND)/*.mjs $(FRONTEND)/*.json)
	cd $(FRONTEND) && npm run build

# An sdist and a wheel in dist/, the dashboard's static export inside both (setup.py copies it into
# the package at build time): `pip install dist/mlservice-*.whl` needs no Node.
# Needs only `build` in the venv, not the test dependencies.
dist: $(BIN)/python dashboard
	$(BIN)/pip install --quiet "build>=1.2,<2"
	rm -rf dist build
	$(BIN)/python -m build --outdir dist .

# The authorization matrix runs twice: in the suite in-process, then against a real
# `serve --workers 2` over HTTP (every cell answered by whichever process accepts it; ~20 s).
test: install-dev dashboard
	$(BIN)/python -m pytest --durations=15
	MLSERVICE_TEST_API_WORKERS=2 $(BIN)/python -m pytest tests/reliability/test_auth_matrix.py -q
	$(MAKE) --no-print-directory test-frontend
	$(MAKE) --no-print-directory test-image

# Browser tests use Debian's Chromium; no tool downloads a browser of its own. CHROME_PATH is the
# one the e2e drives: the chromium on PATH, else where Debian's package puts it. Evaluated when
# used, so after `browser` installed it.
CHROME_PATH ?= $(shell command -v chromium 2>/dev/null || echo /usr/bin/chromium)
export CHROME_PATH

browser:
	@[ -x "$(CHROME_PATH)" ] || { \
		echo "installing Debian's chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@[ -x "$(CHROME_PATH)" ] || { echo "no Chromium at CHROME_PATH=$(CHROME_PATH)"; exit 1; }

# Type check, API contract against this backend's OpenAPI schema, unit tests, then the
# end-to-end run in headless Chromium against a real `mlservice serve`.
test-frontend: browser
	cd $(FRONTEND) && npm run typecheck && npm run check:api && npm test && npm run test:e2e

# The container image from the unchanged Dockerfile, built with Podman (Debian's package, a
# debootstrap base and stand-ins for Docker Hub's images: deploy/podman/build-image.sh; needs root)
# and run as `docker run` would, without --init: tests/container drives it over HTTP, then brings
# up docker-compose.yml with podman-compose (stand-ins for its postgres and redis images too).
IMAGE ?= localhost/mlservice:test
PODMAN_CONF_DIR ?= /var/tmp/mlservice-podman
export PODMAN_CONF_DIR

test-image: install-dev
	deploy/podman/build-image.sh $(IMAGE) --compose
	CONTAINERS_CONF=$(PODMAN_CONF_DIR)/containers.conf ML_TEST_IMAGE=$(IMAGE) \
		$(BIN)/python -m pytest tests/container -v -s

# 50 clients × 60 s of mixed load per backend (SQLite, then a throw-away PostgreSQL database),
# then the same against Celery workers (ML_QUEUE=celery, 2 `mlservice worker`s, Redis DB 9);
# prints requests, p50/p99 per operation and errors, exits non-zero on any error.
soak: install-dev
	$(BIN)/python bench/soak.py --duration 60
	$(BIN)/python bench/soak.py --duration 60 --queue celery --workers 2

clean:
	rm -rf $(VENV) $(FRONTEND)/node_modules $(FRONTEND)/.next $(FRONTEND)/out
