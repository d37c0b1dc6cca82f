# The README's two commands are `make up` and `make test`; both install what they need first.
SHELL := /bin/bash
UV_VERSION ?= 0.13.9
TOOLS := .tools
# uv from PATH when present, else a private copy installed from PyPI into .tools/
UV := $(shell command -v uv 2>/dev/null || echo $(TOOLS)/bin/uv)
RUN := $(UV) run --frozen

.PHONY: install up test test-fast lint fmt typecheck bench clean

$(TOOLS)/bin/uv:
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

install: $(if $(filter $(TOOLS)/bin/uv,$(UV)),$(TOOLS)/bin/uv)
	$(UV) sync --frozen

up: install
	$(RUN) socialflow up

test: install
	$(RUN) pytest

test-fast: install
	$(RUN) pytest -x -q -m "not postgres"

lint: install
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy

fmt: install
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

typecheck: install
	$(RUN) mypy

bench: install
	$(RUN) python bench/node_overhead.py
	$(RUN) python bench/ingest.py
	$(RUN) python bench/latency.py
	$(RUN) python bench/throughput.py
	$(RUN) python bench/retrieval.py
	$(RUN) python bench/vector_search.py
	$(RUN) python bench/embedding.py

clean:
	rm -rf .socialflow .pytest_cache .mypy_cache .ruff_cache test-artifacts
