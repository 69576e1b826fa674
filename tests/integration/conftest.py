"""Fixtures of the container tests (tests/integration/engine.py): one engine, one image and one
simulator per test module, all removed at the module's end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.engine import (
    SIMULATOR_TOKEN,
    Engine,
    engine_session,
    network,
    start_simulator,
    unique,
)


@pytest.fixture(scope="module")
def podman() -> Iterator[Engine]:
    with engine_session() as made:
        yield made


@pytest.fixture(scope="module")
def image(podman: Engine) -> str:
    """The image, built from the unchanged Dockerfile by `make image ENGINE=podman`."""
    return podman.build(unique("localhost/pinpointe-exporter-test"))


@pytest.fixture(scope="module")
def simulator_container(podman: Engine, image: str) -> tuple[str, str]:
    """(a network of the module's own, the API URL of the simulator running on it)."""
    net = network(podman)
    return net, start_simulator(podman, image, net, SIMULATOR_TOKEN)
