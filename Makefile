# Two entry points for a new user: `make demo` and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
# The runtime dependencies at their floors (scripts/min-requirements), for test-min.
MIN_VENV ?= .venv-min

.PHONY: demo test test-suite test-min test-containers unit lint system-deps bench bench-container manifests mixin lock image clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

$(VENV)/.bench: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[bench]'
	touch $@

# make demo LISTEN=127.0.0.1:9999 when 9863 is taken.
LISTEN ?= :9863

demo: $(VENV)/.runtime
	@$(BIN)/pinpointe-exporter --demo --web.listen-address=$(LISTEN) || { \
	  status=$$?; \
	  echo "make demo: the exporter stopped (exit $$status). If $(LISTEN) is taken, pick another address: make demo LISTEN=127.0.0.1:9999" >&2; \
	  exit $$status; }

system-deps:
	scripts/install-system-deps

lint: $(VENV)/.test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Most tests wait on real processes and sockets, so 4 workers fit 2 cores. A module's tests
# run on one worker, in order (--dist loadscope): they share module fixtures.
PYTEST_WORKERS ?= 4
PYTEST_PARALLEL = -n $(PYTEST_WORKERS) --dist loadscope --no-loadscope-reorder

# The fast tier: unit tests of the modules (tests/<subpackage>/), the top-level modules
# and the project's layout and docs, in-process, in seconds. tests/integration/ starts
# processes (the exporter, Prometheus, Chromium, tsc, podman) and is left out.
unit: $(VENV)/.test
	$(BIN)/pytest -q -p no:cacheprovider --ignore=tests/integration tests

# The whole suite, then test-min even when the suite failed (--keep-going): each
# reports its own outcome, and make test fails if either failed.
test: system-deps lint
	@$(MAKE) --no-print-directory --keep-going test-suite test-min || \
	  { echo "make test: FAILED (test-suite and test-min both ran: see above)" >&2; exit 1; }

test-suite: $(VENV)/.test
	$(BIN)/pytest $(PYTEST_PARALLEL)

# The container tests alone: the image built with podman, the Compose stack, the Kubernetes pods
# (docs/deploy.md, "Tested with podman"). `test` runs them too, in test-suite's one pytest run, where they
# wait on containers while the other modules use the CPU. The first run makes the stand-in base
# images (a few minutes); later runs reuse them from ~/.cache/pinpointe-exporter.
CONTAINER_TESTS = $(wildcard tests/integration/test_container_*.py)
test-containers: system-deps $(VENV)/.test
	$(BIN)/pytest $(PYTEST_PARALLEL) $(CONTAINER_TESTS)

# The fault tests again, against the oldest versions pyproject.toml allows (installed once;
# reinstalled when pyproject.toml changes): the floors carry protections the code relies on.
$(MIN_VENV)/.installed: pyproject.toml scripts/min-requirements
	rm -rf $(MIN_VENV)
	$(PYTHON) -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/pip install --quiet $$($(PYTHON) scripts/min-requirements) pytest pytest-xdist
	touch $@

test-min: $(MIN_VENV)/.installed
	$(MIN_VENV)/bin/python scripts/min-requirements | sed 's/==/ /' | while read name version; do \
		$(MIN_VENV)/bin/pip show $$name | grep -x "Version: $$version" >/dev/null \
			|| { echo "$(MIN_VENV): $$name is not $$version"; exit 1; }; done
	PYTHONPATH=$(CURDIR) $(MIN_VENV)/bin/python -m pytest -q -p no:cacheprovider $(PYTEST_PARALLEL) \
		tests/integration/test_hostile.py tests/integration/test_faults.py tests/integration/test_client.py tests/integration/test_politeness.py

# Regenerate the Kubernetes PrometheusRules and dashboard ConfigMaps from prometheus/ and grafana/.
manifests: $(VENV)/.test
	$(BIN)/python scripts/gen-k8s-manifests

# Render the monitoring mixin (mixin/) into every file that carries rules or dashboards:
# prometheus/rules.yml and alerts.yml, grafana/dashboards/, the dashboard provider of
# grafana/provisioning/ and the Kubernetes objects (docs/alerting.md). Uses the jsonnet
# package of the test extras; tests/integration/test_mixin.py fails when a committed file differs.
mixin: $(VENV)/.test
	$(BIN)/python mixin/render.py

# requirements.txt: the runtime dependencies the image installs, exact versions with the
# hashes of every file (pip-tools). Keeps existing pins that still fit pyproject.toml;
# `make lock LOCK_ARGS=--upgrade` takes the newest releases. Run it with the image's
# Python minor (tests/integration/test_docker.py checks the header).
LOCK_ARGS ?=
lock: $(VENV)/.dev
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --generate-hashes \
	  --strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links \
	  --output-file=requirements.txt $(LOCK_ARGS) pyproject.toml

# The container image with its OCI labels: version from the package, revision and
# created from the commit (so a rebuild of one commit is labelled the same).
# PYTHON_DIGEST=sha256:... pins the base image (README: "Docker"). ENGINE=podman builds with
# podman (BUILDAH_FORMAT=docker: podman's default OCI format would drop the HEALTHCHECK).
ENGINE ?= docker
IMAGE ?= pinpointe-exporter:latest
SOURCE ?=
PYTHON_DIGEST ?=
image:
	BUILDAH_FORMAT=docker $(ENGINE) build -t $(IMAGE) \
	  --build-arg SOURCE="$(SOURCE)" \
	  --build-arg VERSION="$$(sed -n 's/^__version__ = "\(.*\)"/\1/p' exporter/__init__.py)" \
	  --build-arg REVISION="$$(git rev-parse HEAD)" \
	  --build-arg CREATED="$$(git log -1 --format=%cI)" \
	  --build-arg PYTHON_DIGEST="$(PYTHON_DIGEST)" \
	  .

# Not part of `make test`: about 10 minutes; needs wrk, nginx and prometheus-pushgateway
# (each one missing is reported as skipped).
bench: $(VENV)/.bench
	$(BIN)/python bench/run.py

# Image size, contents and cold start with podman (docs/deploy.md quotes it); about 2 minutes
# once the container tests' stand-in base images are cached.
bench-container: system-deps $(VENV)/.test
	$(BIN)/python bench/container.py

clean:
	rm -rf $(VENV) $(MIN_VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .cache
