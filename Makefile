# Two commands on a fresh machine:  `make run` (start everything)  and  `make test` (whole suite).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
FRONTEND := frontend

.PHONY: run install install-dev dashboard test test-python test-frontend bench clean

run: install dashboard
	$(BIN)/mlservice serve

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-dev: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev,distributed]"

# The dashboard is a static export served by `mlservice serve`; rebuilt only when its sources change.
dashboard:
	@if [ -f $(FRONTEND)/package.json ]; then \
		$(MAKE) --no-print-directory $(FRONTEND)/out/index.html; \
	else echo "no dashboard sources: serving the API only"; fi

$(FRONTEND)/node_modules/.package-lock.json: $(FRONTEND)/package-lock.json
	cd $(FRONTEND) && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund

$(FRONTEND)/out/index.html: $(FRONTEND)/node_modules/.package-lock.json $(shell find $(FRONTEND)/src $(FRONTEND)/app $(FRONTEND)/public -type f 2>/dev/null) $(wildcard $(FRONTEND)/*.ts $(FRONTEND)/*.mjs $(FRONTEND)/*.json)
	cd $(FRONTEND) && npm run build

test: install-dev dashboard
	$(BIN)/python -m pytest
	$(MAKE) --no-print-directory test-frontend

test-frontend:
	@if [ -f $(FRONTEND)/package.json ]; then cd $(FRONTEND) && npm test; fi

clean:
	rm -rf $(VENV) $(FRONTEND)/node_modules $(FRONTEND)/.next $(FRONTEND)/out
