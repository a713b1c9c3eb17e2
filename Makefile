# One set of targets, used locally and in CI. Every target installs what it needs.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
WEB_STAMP := web/node_modules/.installed
WEB_DIST := src/modelmonitor/static/index.html
WEB_SOURCES := $(shell find web/src web/index.html web/vite.config.ts web/tailwind.config.js web/package.json -type f 2>/dev/null)
TARGET ?=
ARGS ?=

.PHONY: run dev test test-python test-web lint typecheck types bench bench-proxy bench-llm bench-hostile bench-pipeline bench-anomaly bench-ws bench-ui bench-sampling services build clean

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -qq --upgrade pip
	$(PY) -m pip install -qq -e '.[dev]'
	@touch $(STAMP)

$(WEB_STAMP): web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	@touch $(WEB_STAMP)

$(WEB_DIST): $(WEB_STAMP) $(WEB_SOURCES)
	cd web && npm run build

## run: start ModelMonitor on embedded defaults (with the demo model API unless TARGET is set)
run: $(STAMP) $(WEB_DIST)
	$(VENV)/bin/modelmonitor up $(if $(TARGET),--target $(TARGET),--demo) $(ARGS)

## dev: the API with the demo, plus Vite's dev server proxying to it
dev: $(STAMP) $(WEB_STAMP)
	$(VENV)/bin/modelmonitor up --demo $(ARGS) & cd web && npm run dev; kill %1

## services: start PostgreSQL, Redis and RabbitMQ when they are not running (TimescaleDB built in)
services:
	@bash scripts/services.sh
	@bash scripts/ensure-prometheus.sh
	@bash scripts/ensure-timescaledb.sh

## test: every test (Python, dashboard components, browser end to end)
test: $(STAMP) services $(WEB_DIST)
	@bash scripts/ensure-alertmanager.sh
	$(MAKE) lint
	$(PY) -m pytest -q -p no:cacheprovider
	$(MAKE) test-web

test-python: $(STAMP) $(WEB_STAMP) services
	@bash scripts/ensure-alertmanager.sh
	$(PY) -m pytest -q -p no:cacheprovider

test-web: $(STAMP) $(WEB_DIST)
	@bash scripts/ensure-chromium.sh
	cd web && npm run test:unit && npm run test:e2e

## types: regenerate the dashboard's API types from the server's OpenAPI schema
types: $(STAMP) $(WEB_STAMP)
	$(PY) scripts/export-openapi.py web/openapi.json
	cd web && npx openapi-typescript openapi.json -o src/api/schema.d.ts

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy

typecheck: lint

## bench: proxy, pipeline and anomaly benchmarks (prints ratios against same-run baselines)
bench: bench-proxy bench-llm bench-hostile bench-pipeline bench-ws bench-ui bench-anomaly bench-sampling

bench-proxy: $(STAMP) services
	@bash scripts/ensure-bench-tools.sh
	$(PY) bench/proxy.py

## bench-llm: what recognition and LLM parsing cost the proxy (throughput, a 10,000-token stream)
bench-llm: $(STAMP)
	@bash scripts/ensure-bench-tools.sh
	$(PY) bench/llm.py
## bench-hostile: 100,000 distinct random paths through `modelmonitor up` (memory, latency)
bench-hostile: $(STAMP)
	$(PY) bench/hostile.py

bench-pipeline: $(STAMP) services
	$(PY) bench/pipeline.py

bench-ws: $(STAMP)
	$(PY) bench/ws_fanout.py

bench-ui: $(STAMP) $(WEB_DIST)
	@bash scripts/ensure-chromium.sh
	$(PY) bench/ui_responsiveness.py

bench-sampling: $(STAMP)
	@bash scripts/ensure-bench-tools.sh
	$(PY) bench/sampling.py

bench-anomaly: $(STAMP)
	$(PY) bench/anomaly.py

build: $(WEB_DIST)
	$(PY) -m pip wheel --no-deps -w dist .

clean:
	rm -rf $(VENV) web/node_modules src/modelmonitor/static dist .modelmonitor
