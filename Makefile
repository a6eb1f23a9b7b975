# mash-hub: `make demo` and `make test` are all a new machine needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test quick-test lint typecheck schemas-check rules-check promtool chromium asyncapi broker faults bench clean docker-check

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

broker:
	@scripts/ensure-broker.sh

test-broker:
	@scripts/ensure-broker.sh --tests

demo: $(STAMP) broker
	$(BIN)/mash demo

# The full benchmark (several minutes); figures and how to read them in BENCHMARKS.md.
bench: $(STAMP) broker
	$(BIN)/mash bench

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Every schema against the last release, both directions (schemas/released/, accepted.toml).
schemas-check: $(STAMP)
	$(BIN)/mash schemas check

# promtool and the Prometheus server (Debian's `prometheus` package), installed where missing.
promtool:
	@monitoring/ensure-promtool.sh

# The alert rules load, and each alert fires (and stays quiet) as its unit tests say.
rules-check: promtool
	promtool check rules monitoring/prometheus/alerts.yml
	promtool test rules monitoring/prometheus/alerts_test.yml

# Regenerate docs/asyncapi.yaml after a change to the topology or the schemas.
asyncapi: $(STAMP)
	$(BIN)/mash asyncapi --output docs/asyncapi.yaml

# Debian's chromium for the console's browser tests, installed where missing.
chromium:
	@scripts/ensure-chromium.sh

test: $(STAMP) test-broker promtool chromium lint typecheck schemas-check rules-check
	$(BIN)/pytest -q

# While developing: every test but the load and fault-injection ones (markers in
# pyproject.toml); `make test` runs them all.
quick-test: $(STAMP) test-broker chromium
	$(BIN)/pytest -q -m "not load and not faults"

# The images built and docker/compose.yaml run for real (root; installs docker.io, debootstrap
# and docker-compose where missing, runs its own dockerd, leaves nothing behind). See the
# README's Deployment section; 4 to 8 minutes from nothing, 2 from its cache.
docker-check:
	scripts/docker-check.sh

# Every fault class with 500 contacts each, one table at the end (about 10 minutes).
faults: $(STAMP) broker
	$(BIN)/python -m faults --contacts 500

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
