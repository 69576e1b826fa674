# Two entry points for a new user: `make demo` and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: demo test lint system-deps bench manifests clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

$(VENV)/.bench: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[bench]'
	touch $@

demo: $(VENV)/.runtime
	$(BIN)/pinpointe-exporter --demo

system-deps:
	scripts/install-system-deps

lint: $(VENV)/.test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: system-deps lint
	$(BIN)/pytest

# Regenerate the Kubernetes PrometheusRules and dashboard ConfigMaps from prometheus/ and grafana/.
manifests: $(VENV)/.test
	$(BIN)/python scripts/gen-k8s-manifests

# Not part of `make test`: about 10 minutes; needs wrk, nginx and prometheus-pushgateway
# (each one missing is reported as skipped).
bench: $(VENV)/.bench
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
