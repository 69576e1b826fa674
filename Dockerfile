# syntax=docker/dockerfile:1
#
# pinpointe-exporter container image.
#
#   docker build -t pinpointe-exporter .
#   docker run --rm -p 9863:9863 pinpointe-exporter --demo
#   docker run --rm -p 9863:9863 -e PINPOINTE_TOKEN \
#     -v "$PWD/config.yaml:/etc/pinpointe-exporter/config.yaml:ro" pinpointe-exporter
#
# tests/test_docker_build.py repeats the build and install steps below outside
# Docker (there is no Docker engine in CI): keep the two in step.

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# ---- build: turn the source tree into a wheel --------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN pip install --no-cache-dir build==1.6.1
COPY pyproject.toml README.md ./
COPY exporter/ ./exporter/
RUN python -m build --wheel --outdir /dist .

# ---- runtime: the wheel and its dependencies, nothing else -------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="pinpointe-exporter" \
      org.opencontainers.image.description="Prometheus exporter for Pinpointe autoresponder engagement results" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# pip byte-compiles the package at install time, so a read-only root
# filesystem (as in deploy/kubernetes) costs nothing at start.
COPY --from=build /dist/ /tmp/dist/
RUN pip install --no-cache-dir /tmp/dist/*.whl \
    && rm -rf /tmp/dist \
    && groupadd --system --gid 10001 exporter \
    && useradd --system --uid 10001 --gid exporter --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin exporter \
    && mkdir -p /etc/pinpointe-exporter
# Numeric so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
EXPOSE 9863
# Python's own urllib: the slim image has no curl or wget. Override the URL
# with HEALTHCHECK_URL when --web.listen-address uses another port.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; url = os.environ.get('HEALTHCHECK_URL', 'http://127.0.0.1:9863/-/healthy'); sys.exit(0 if urllib.request.urlopen(url, timeout=4).status == 200 else 1)"]
ENTRYPOINT ["pinpointe-exporter"]
CMD ["--config.file=/etc/pinpointe-exporter/config.yaml"]
