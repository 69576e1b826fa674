"""podman for the container tests: a private storage, stand-in base images, the project's image.

No registry is reachable from the test machines, so the registry images the Dockerfile and
the Compose file name are stand-ins made from Debian packages by scripts/container-base and
imported under the registry images' own names (python:3.11-slim-trixie is Debian's Python
3.11 with pip). The Dockerfile and the Compose file run unchanged on them. What that proves:
the Dockerfile's own steps (the wheel build, the hashed dependency install, the user, the
labels), the entrypoint and command, the health check, the image under a read-only root,
dropped capabilities and a memory limit. What it cannot prove: anything about the real base
image's contents (its Python patch release, its Debian packages, its pip), nor the real
Prometheus 3 and Alertmanager images.

podman keeps its images, containers and build cache in a storage of its own under
${XDG_CACHE_HOME:-~/.cache}/pinpointe-exporter/containers/, so the stand-ins never shadow the
real images in the user's own podman storage, and survive from one run to the next.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import require_tool, wait_for

ROOT = Path(__file__).resolve().parents[2]
FILES = Path(__file__).resolve().parent / "containers"
INSTALL = "scripts/install-system-deps (podman, runc, mmdebstrap, ...)"
# What `make image SOURCE=...` is given by the tests; the label must carry it.
SOURCE = "https://example.invalid/pinpointe-exporter"
# The usertoken the tests' simulator accepts: distinctive, so a test can look for it anywhere.
SIMULATOR_TOKEN = "tok-in-a-mounted-file-7f3a9c"


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pinpointe-exporter"


def base_image() -> str:
    """The Dockerfile's base image (its PYTHON_IMAGE default)."""
    (image,) = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", (ROOT / "Dockerfile").read_text(), re.M)
    return str(image)


def unique(prefix: str) -> str:
    """A name no other test run on this machine uses (lowercase: valid in Kubernetes too)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write(path: Path, text: str) -> Path:
    """Write atomically (several xdist workers write the same content)."""
    if not path.exists() or path.read_text() != text:
        partial = path.with_name(f"{path.name}.{os.getpid()}")
        partial.write_text(text)
        partial.replace(path)
    return path


def engine_env() -> dict[str, str]:
    state = cache_root() / "containers"
    state.mkdir(parents=True, exist_ok=True)
    run = Path(os.environ.get("XDG_RUNTIME_DIR") or "/run") / "pinpointe-exporter-containers"
    storage = _write(
        state / "storage.conf",
        "[storage]\n"
        'driver = "overlay"\n'
        f'graphroot = "{state / "storage"}"\n'
        f'runroot = "{run / "storage"}"\n',
    )
    committed = (FILES / "containers.conf").read_text()
    conf = _write(
        state / "containers.conf",
        committed.replace("[engine]\n", f'[engine]\ntmp_dir = "{run / "libpod"}"\n', 1),
    )
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    # BUILDAH_FORMAT=docker: the OCI image format has no HEALTHCHECK, podman would drop it.
    return {
        **env,
        "CONTAINERS_CONF": str(conf),
        "CONTAINERS_STORAGE_CONF": str(storage),
        "BUILDAH_FORMAT": "docker",
    }


class PodmanFailed(AssertionError):
    pass


@dataclass
class Engine:
    """podman with the tests' configuration; remembers what it started, to remove it."""

    env: dict[str, str]
    _made: list[tuple[str, str]] = field(default_factory=list)

    def completed(
        self, *argv: str | Path, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """A command's exit code and output, for commands whose failure is the point."""
        return subprocess.run(
            [str(a) for a in argv],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def run(self, *argv: str | Path, check: bool = True, timeout: float = 300) -> str:
        """A command's standard output; a failure when it exits non-zero and ``check``."""
        proc = self.completed(*argv, timeout=timeout)
        if check and proc.returncode != 0:
            raise PodmanFailed(
                f"{' '.join(map(str, argv))} exited {proc.returncode}:\n{proc.stderr[-4000:]}"
            )
        return proc.stdout

    def podman(self, *args: str | Path, check: bool = True, timeout: float = 300) -> str:
        return self.run("podman", *args, check=check, timeout=timeout)

    def inspect(self, name: str, kind: str = "container") -> dict[str, Any]:
        data = json.loads(self.podman(kind, "inspect", name))
        if isinstance(data, list):  # `pod inspect` answers one object, the others a list
            (data,) = data
        result: dict[str, Any] = data
        return result

    def proc_status(self, container: str) -> dict[str, str]:
        """/proc/1/status in the container: its first process's credentials and capabilities."""
        text = self.podman("exec", container, "cat", "/proc/1/status")
        return {k: v.strip() for k, v in (line.split(":", 1) for line in text.splitlines())}

    def ip(self, container: str) -> str:
        networks = self.inspect(container)["NetworkSettings"]["Networks"]
        (address,) = {n["IPAddress"] for n in networks.values() if n["IPAddress"]}
        return str(address)

    def published_port(self, container: str, port: int) -> int:
        """The host port podman published ``port`` on (``-p 127.0.0.1::PORT``)."""
        lines = self.podman("port", container, f"{port}/tcp").split()
        if not lines:
            raise PodmanFailed(f"{container} publishes no {port}, stopped?\n{self.logs(container)}")
        (line,) = lines
        host, _, published = line.rpartition(":")
        assert host == "127.0.0.1", line
        return int(published)

    def write_refusal(self, container: str) -> str:
        """Why root in the container may not create a file in /etc, which it owns: only a
        read-only root filesystem refuses ("" when the write succeeds)."""
        refused = self.completed("podman", "exec", "--user", "0", container, "touch", "/etc/probe")
        return refused.stderr if refused.returncode else ""

    def logs(self, container: str) -> str:
        proc = self.completed("podman", "logs", container)
        return proc.stdout + proc.stderr

    def made(self, kind: str, name: str) -> str:
        """Remember a container, pod, network, volume or image to remove at cleanup()."""
        self._made.append((kind, name))
        return name

    def start(self, name: str, image: str, *args: str, options: tuple[str, ...] = ()) -> str:
        """podman run -d: a container removed at cleanup()."""
        self.made("container", name)
        self.podman("run", "-d", "--name", name, *options, image, *args)
        return name

    def cleanup(self) -> None:
        """Remove what this engine made, newest first, even after a failure; fail if any of
        it is still there."""
        removed = []
        while self._made:
            kind, name = self._made.pop()
            remove = {
                "image": ("rmi",),
                "container": ("rm", "--time=0"),
                "pod": ("pod", "rm", "--time=0"),
            }
            self.podman(*remove.get(kind, (kind, "rm")), "--force", name, check=False)
            removed.append((kind, name))
        left = [
            (k, n) for k, n in removed if self.completed("podman", k, "exists", n).returncode == 0
        ]
        if left:
            raise PodmanFailed(f"still there after the tests: {left}")

    def stand_ins(self, *images: str) -> None:
        """Make the stand-ins of these registry images (cached; see scripts/container-base)."""
        self.run(sys.executable, ROOT / "scripts" / "container-base", *images, timeout=1800)

    def build(self, tag: str, *command: str | Path) -> str:
        """Build ``tag`` from the unchanged Dockerfile, with `make image` unless ``command``
        says otherwise; the image is removed at cleanup()."""
        self.stand_ins(base_image())
        self.made("image", tag)
        make_image = ("make", "--no-print-directory", "-C", ROOT, "image", "ENGINE=podman")
        # One build at a time on this machine: the next one finds its steps in the cache.
        with locked(cache_root() / "containers" / "build.lock"):
            self.run(*(command or (*make_image, f"IMAGE={tag}", f"SOURCE={SOURCE}")), timeout=1200)
        return tag


def engine() -> Engine:
    """The engine, or a skip (a failure with CI=true) when podman or root is missing."""
    for tool in ("podman", "runc", "mmdebstrap"):
        require_tool(tool, INSTALL, skip_outside_ci=True)
    if os.geteuid() != 0:
        message = "the container tests run podman as root (container addresses, mmdebstrap)"
        if not os.environ.get("CI"):
            pytest.skip(message)
        pytest.fail(message)
    return Engine(engine_env())


@contextlib.contextmanager
def engine_session() -> Iterator[Engine]:
    """An engine whose containers, pods, networks and images are removed on leaving."""
    made = engine()
    try:
        yield made
    finally:
        made.cleanup()


def network(made: Engine) -> str:
    """A bridge network of its own (removed at cleanup)."""
    name = made.made("network", unique("pinpointe-test"))
    made.podman("network", "create", name)
    return name


def start_simulator(
    made: Engine, image: str, net: str, token: str, autoresponders: int = 25
) -> str:
    """The project's Pinpointe simulator in a container of the image on ``net``; its API URL.

    A container rather than a process here: containers reach each other on their network,
    while a process on the host would have to listen beyond the loopback address.
    """
    name = made.start(
        unique("pinpointe-simulator"),
        image,
        "-m",
        "exporter.simulator",
        "--host=0.0.0.0",
        "--port=8080",
        "--username=demo",
        f"--token={token}",
        f"--autoresponders={autoresponders}",
        options=("--network", net, "--no-healthcheck", "--read-only", "--entrypoint", "python"),
    )
    url = f"http://{made.ip(name)}:8080/apijson.php"
    answered = lambda: requests.post(url, data=b"{}", timeout=5).status_code  # noqa: E731
    wait_for(answered, timeout=120, what="the simulator")
    return url
