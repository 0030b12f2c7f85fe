# Curbstop: every command a developer or CI needs. `make help` lists them.
SHELL := /bin/bash
UV_RUN := uv run --frozen
PYTEST := $(UV_RUN) pytest

.PHONY: help setup demo serve test test-fast lint format typecheck bench bench-core bench-orders bench-routing bench-sync bench-bridge bench-mobile bench-adjustments clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'

setup: ## install Python (uv.lock), npm (package-lock.json) and Debian packages
	@./scripts/setup.sh

demo: setup ## run the whole system on embedded defaults: SQLite, local pouchdb-server, a generated demo district
	$(UV_RUN) curbstop demo

serve: setup ## run the API server against DATABASE_URL (default var/curbstop.db)
	$(UV_RUN) curbstop serve

test: setup ## run every test tier that can run here (SQLite, PostgreSQL, pouchdb-server, ptys, Xvfb, Chromium)
	$(PYTEST) -m "not bench" $(PYTEST_ARGS)

test-fast: setup ## unit tests only: SQLite, no external processes
	$(PYTEST) -m "not bench and not postgres and not couchdb and not ui and not browser and not slow" $(PYTEST_ARGS)

lint: setup ## ruff lint + format check, mypy
	$(UV_RUN) ruff check .
	$(UV_RUN) ruff format --check .
	$(UV_RUN) mypy contracts routing device_bridge mobile/core mobile/sync

format: setup ## apply ruff formatting and fixes
	$(UV_RUN) ruff format .
	$(UV_RUN) ruff check --fix .

bench: setup ## every benchmark; writes docs/benchmarks.md
	$(UV_RUN) python -m benchmarks all

bench-core: setup ## CIS import and API latency benchmarks
	$(UV_RUN) python -m benchmarks core

bench-orders: setup ## every order-generation rule over 100,000 accounts, SQLite and PostgreSQL
	$(UV_RUN) python -m benchmarks orders

bench-routing: setup ## Solomon VRPTW vs PyVRP and VROOM, and the utility-day benchmark
	$(UV_RUN) python -m benchmarks routing

bench-sync: setup ## replication throughput vs PouchDB's replicator
	$(UV_RUN) python -m benchmarks sync

bench-bridge: setup ## serial line efficiency and route load time
	$(UV_RUN) python -m benchmarks bridge

bench-mobile: setup ## field app cold start and order open time under Xvfb
	$(UV_RUN) python -m benchmarks mobile

bench-adjustments: setup ## re-rate 24 months of bills for 100,000 accounts, SQLite and PostgreSQL, vs a per-bill loop
	$(UV_RUN) python -m benchmarks adjustments

clean: ## remove local state (var/, caches); keeps .venv and node_modules
	rm -rf var .pytest_cache .mypy_cache .ruff_cache test-artifacts
