# cf_portal: `make run` serves the app with demo data; `make test` runs every test.
# Both set up what is missing first (scripts/bootstrap.sh) and stop with a one-line reason on failure.
SHELL := /bin/bash
PORT ?= 3000
export PATH := $(CURDIR)/.tools/bin:$(CURDIR)/.venv/bin:$(PATH)
export REFLEX_TELEMETRY_ENABLED := false
export REFLEX_CHECK_LATEST_VERSION := false
export NPM_CONFIG_REGISTRY ?= https://registry.npmjs.org/
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run test setup setup-test db bench clean

run: setup db
	@echo "==> Building the frontend and starting cf_portal on http://localhost:$(PORT)/"
	@CF_PORT=$(PORT) python -m cf_portal.serve --port $(PORT) \
	  || { echo "cf_portal failed to start (see the output above)" >&2; exit 1; }

test: setup-test
	@scripts/test.sh

setup:
	@scripts/bootstrap.sh

setup-test:
	@scripts/bootstrap.sh --test

db:
	@python -m cf_portal.cli migrate >/dev/null || { echo "cf_portal setup failed: database migrations did not apply" >&2; exit 1; }
	@python -m cf_portal.cli seed || { echo "cf_portal setup failed: the demo data could not be loaded" >&2; exit 1; }

bench: setup-test
	@python bench/run_all.py

clean:
	rm -rf .web .states .cache data
