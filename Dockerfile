# pinpointe-exporter container image.
#
#   docker build -t pinpointe-exporter .        # or `make image`, which also sets the labels
#   docker run --rm -p 9863:9863 pinpointe-exporter --demo
#   docker run --rm -p 9863:9863 -e PINPOINTE_TOKEN \
#     -v "$PWD/config.yaml:/etc/pinpointe-exporter/config.yaml:ro" pinpointe-exporter
#
# tests/integration/test_docker_build.py repeats the build and install steps below outside
# Docker (there is no Docker engine in CI): keep the two in step.
#
# Base image: `python:<minor>-slim-<debian>` is a tag the official images
# rebuild for every Python patch release and Debian security update, on the
# newest Debian release they offer for that minor. The minor must be one the
# test suite runs on (tests/integration/test_docker.py checks it against the interpreter
# running the tests, requires-python and requirements.txt's header). To make a
# build repeatable, pin the tag's current rebuild by its digest:
#
#   docker buildx imagetools inspect python:3.11-slim-trixie --format '{{json .Manifest.Digest}}'
#   docker build --build-arg PYTHON_DIGEST=sha256:... .
#
# and refresh it (with Renovate, Dependabot or by hand) to take in security fixes.
ARG PYTHON_IMAGE=python:3.11-slim-trixie
ARG PYTHON_DIGEST=

# ---- build: turn the source tree into a wheel --------------------------------
FROM ${PYTHON_IMAGE}${PYTHON_DIGEST:+@${PYTHON_DIGEST}} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN pip install --no-cache-dir build==1.6.1
COPY pyproject.toml README.md LICENSE ./
COPY exporter/ ./exporter/
RUN python -m build --wheel --outdir /dist .

# ---- runtime: the locked dependencies and the wheel, nothing else ------------
FROM ${PYTHON_IMAGE}${PYTHON_DIGEST:+@${PYTHON_DIGEST}}
# OCI labels; `make image` passes them (version from the package, revision and
# created from the git commit, so that a rebuild of one commit is identical).
ARG SOURCE=""
ARG VERSION=""
ARG REVISION=""
ARG CREATED=""
LABEL org.opencontainers.image.title="pinpointe-exporter" \
      org.opencontainers.image.description="Prometheus exporter for Pinpointe autoresponder engagement results" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# Dependencies first, in a layer of their own: exact versions, every file
# checked against its hash (requirements.txt, `make lock`), wheels only. A code
# change does not download them again.
COPY requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir --require-hashes --only-binary=:all: --no-deps \
       -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt \
    && groupadd --system --gid 10001 exporter \
    && useradd --system --uid 10001 --gid exporter --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin exporter \
    && mkdir -p /etc/pinpointe-exporter
# Then the wheel alone: nothing from the network; `pip check` proves the locked
# dependencies satisfy it. pip byte-compiles the package at install time, so a
# read-only root filesystem (as in deploy/kubernetes) costs nothing at start.
COPY --from=build /dist/ /tmp/dist/
RUN pip install --no-cache-dir --no-deps --no-index /tmp/dist/*.whl \
    && pip check \
    && rm -rf /tmp/dist
# Numeric so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
EXPOSE 9863
# The exporter's own probe of /-/healthy. It follows the entrypoint's
# --web.listen-address and --web.config.file (TLS, basic auth); only mutual TLS needs
# flags of its own: `docker run --health-cmd` or Compose's healthcheck.test (README:
# "Health checks").
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["pinpointe-exporter", "--healthcheck"]
ENTRYPOINT ["pinpointe-exporter"]
CMD ["--config.file=/etc/pinpointe-exporter/config.yaml"]
