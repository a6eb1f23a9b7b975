# mash-hub: `make demo` and `make test` are all a new machine needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck schemas-check asyncapi broker faults bench clean

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

# Regenerate docs/asyncapi.yaml after a change to the topology or the schemas.
asyncapi: $(STAMP)
	$(BIN)/mash asyncapi --output docs/asyncapi.yaml

test: $(STAMP) test-broker lint typecheck schemas-check
	$(BIN)/pytest -q

# Every fault class with 500 contacts each, one table at the end (about 10 minutes).
faults: $(STAMP) broker
	$(BIN)/python -m faults --contacts 500

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
