# The README's two commands are `make up` and `make test`; both install what they need first.
SHELL := /bin/bash
UV_VERSION ?= 0.13.9
TOOLS := .tools
# uv from PATH when present, else a private copy installed from PyPI into .tools/
UV := $(shell command -v uv 2>/dev/null || echo $(TOOLS)/bin/uv)
RUN := $(UV) run --frozen

.PHONY: install frontend up test test-fast lint fmt typecheck bench scale scale-prefect clean

$(TOOLS)/bin/uv:
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

install: $(if $(filter $(TOOLS)/bin/uv,$(UV)),$(TOOLS)/bin/uv)
	$(UV) sync --frozen

# the web app (frontend/dist, served by the API at /): npm ci when the lock changed, then a
# build when any source is newer than the last one
FRONTEND_SRC := $(shell find frontend/src frontend/scripts -type f 2>/dev/null) \
	frontend/index.html frontend/package.json frontend/tsconfig.json frontend/vite.config.ts

frontend/node_modules/.package-lock.json: frontend/package-lock.json
	@command -v npm >/dev/null || { echo "The web app needs Node.js 20+ with npm: install it (e.g. apt-get install nodejs npm, or https://nodejs.org) and run make again." >&2; exit 1; }
	cd frontend && npm ci --no-audit --no-fund

frontend/dist/index.html: frontend/node_modules/.package-lock.json $(FRONTEND_SRC)
	cd frontend && npm run build

frontend: frontend/dist/index.html

up: install frontend
	$(RUN) socialflow up

test: install frontend
	cd frontend && npx vitest run
	$(RUN) pytest

# the fast tier: no PostgreSQL, no Prefect server, no browser, nothing slow (tests/conftest.py);
# on every core, a test file per process at a time (its module fixtures start once)
test-fast: install
	SOCIALFLOW_TEST_TIER=fast $(RUN) pytest -q -n auto --dist loadfile

# ruff, mypy (strict on socialflow/) and the import contracts of pyproject.toml
lint: install
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy
	$(RUN) lint-imports --no-logo

fmt: install
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

typecheck: install
	$(RUN) mypy

# 5,000 Instagram webhooks through NGINX to 3 APIs, run by 1 and 3 workers in turn (~15 min here)
scale: install
	$(RUN) python bench/scale.py

# Prefect scaled out: 2 Prefect API processes behind NGINX, Prefect's services in their own
# process, Redis (127.0.0.1:6379, two empty databases claimed and flushed); 3 APIs, 2 workers,
# 2,000 webhooks; every run and task run must be recorded in Prefect
scale-prefect: install
	$(RUN) python bench/scale.py --prefect-apis 2 --phases 2 --events 2000 --pool-size 4

bench: install
	$(RUN) python bench/node_overhead.py
	$(RUN) python bench/ingest.py
	$(RUN) python bench/latency.py
	$(RUN) python bench/instagram_reply.py
	$(RUN) python bench/throughput.py
	$(RUN) python bench/retrieval.py
	$(RUN) python bench/refusal.py
	$(RUN) python bench/vector_search.py
	$(RUN) python bench/embedding.py

clean:
	rm -rf .socialflow .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .grimp_cache test-artifacts
