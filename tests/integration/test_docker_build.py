"""The Dockerfile's build and install steps, performed outside Docker.

There is no Docker engine here or in CI, so this test does what the image build
does, with the same inputs: copy exactly the files the build stage COPYs into an
empty context, `python -m build --wheel` there (with no deprecation warning
from the build backend), install the locked dependencies by hash and then the
wheel alone into a fresh virtual environment, as the runtime stage does, then
run the installed console script the way the image's ENTRYPOINT, CMD and
HEALTHCHECK do. A packaging mistake (a module
left out of the wheel, a missing dependency, a file the build needs but the
Dockerfile does not copy) fails here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT, free_port, parse_samples, series, wait_for

DOCKERFILE = (ROOT / "Dockerfile").read_text()
FAULTS = ROOT / "exporter" / "simulator" / "faults"
# The installed simulator runs without fault injection and says why a fault cannot be set.
SET_A_FAULT = """
from exporter.simulator import Simulator
try:
    Simulator().set_fault("demo", "http_500")
except ValueError as exc:
    print(f"ValueError: {exc}")
"""


def _instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, args = line.partition(" ")
            out.append((keyword.upper(), args.strip()))
    return out


def _build_stage_sources() -> list[str]:
    sources: list[str] = []
    stage = -1
    for keyword, args in _instructions():
        if keyword == "FROM":
            stage += 1
        elif stage == 0 and keyword == "COPY" and not args.startswith("--from"):
            sources.extend(args.split()[:-1])
    return sources


def _runtime(keyword: str) -> str:
    (value,) = [args for kw, args in _instructions() if kw == keyword]
    return value


def _version() -> str:
    match = re.search(
        r'^__version__ = "([^"]+)"', (ROOT / "exporter/__init__.py").read_text(), re.M
    )
    assert match
    return match.group(1)


@dataclass
class Installed:
    wheel: Path
    venv: Path
    workdir: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def script(self) -> Path:
        return self.venv / "bin" / "pinpointe-exporter"

    def run(self, *argv: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
        return subprocess.run(
            [str(a) for a in argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.workdir,  # not the repository: the source tree must not be importable
            env=env,
        )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    tmp = tmp_path_factory.mktemp("docker-build")
    context = tmp / "context"
    context.mkdir()
    for source in _build_stage_sources():
        path = ROOT / source
        assert path.exists(), f"the Dockerfile copies {source}, which does not exist"
        if path.is_dir():
            shutil.copytree(path, context / source, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, context / source)
    dist = tmp / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(context)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    # setuptools warns long before it stops building a deprecated pyproject.toml.
    output = build.stdout + build.stderr
    assert not re.search(r"deprecat", output, re.I), output[-3000:]
    (wheel,) = dist.glob("*.whl")

    venv = tmp / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
    pip += ["--disable-pip-version-check"]
    # The runtime stage's two installs: the locked dependencies by hash, then the
    # wheel alone with nothing from an index; then `pip check`.
    for step in (
        [
            "install",
            "--quiet",
            "--require-hashes",
            "--only-binary=:all:",
            "--no-deps",
            "-r",
            str(ROOT / "requirements.txt"),
        ],
        ["install", "--quiet", "--no-deps", "--no-index", str(wheel)],
        ["check"],
    ):
        proc = subprocess.run([*pip, *step], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    workdir = tmp / "work"
    workdir.mkdir()
    yield Installed(wheel, venv, workdir)


def test_wheel_holds_every_module_and_declares_the_dependencies(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = wheel.namelist()
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = wheel.read(metadata_name).decode()
        (entry_points_name,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        entry_points = wheel.read(entry_points_name).decode()
    source_modules = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "exporter").rglob("*.py")
        if "__pycache__" not in p.parts and FAULTS not in p.parents
    }
    assert source_modules <= set(names), source_modules - set(names)
    assert not [n for n in names if n.startswith("tests/")]
    fault_modules = [n for n in names if n.startswith(FAULTS.relative_to(ROOT).as_posix())]
    assert fault_modules == [], "the simulator's fault injection stays in the source tree"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for dependency in project["dependencies"]:
        assert f"Requires-Dist: {dependency}" in metadata
    assert f"Version: {_version()}" in metadata
    assert "License-Expression: Apache-2.0" in metadata.splitlines()
    assert "pinpointe-exporter = exporter.cli:main" in entry_points


def test_installed_simulator_refuses_a_fault_it_does_not_carry(installed: Installed) -> None:
    proc = installed.run(installed.python, "-c", SET_A_FAULT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        "ValueError: fault injection is not installed: it ships with the source tree "
        "(exporter/simulator/faults/), not with the package"
    )


def test_installed_package_is_the_wheel_not_the_source_tree(installed: Installed) -> None:
    proc = installed.run(installed.python, "-c", "import exporter; print(exporter.__file__)")
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()).is_relative_to(installed.venv)
    check = installed.run(installed.python, "-m", "pip", "--version")
    assert check.returncode != 0, "the runtime venv was built without pip, as intended"


def test_version(installed: Installed) -> None:
    proc = installed.run(installed.script, "--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"pinpointe-exporter {_version()}"


def test_default_command_without_a_mounted_config_says_so(installed: Installed) -> None:
    # `docker run image` with no config mounted: ENTRYPOINT + CMD, a clear exit 2.
    entrypoint = json.loads(_runtime("ENTRYPOINT"))
    cmd = json.loads(_runtime("CMD"))
    assert entrypoint == [installed.script.name]
    proc = installed.run(installed.script, *cmd)
    assert proc.returncode == 2
    assert "/etc/pinpointe-exporter/config.yaml" in proc.stderr


def test_demo_serves_metrics_and_passes_the_healthcheck(installed: Installed) -> None:
    port = free_port()
    log = installed.workdir / "demo.log"
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(installed.script), "--demo", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=installed.workdir,
            env=env,
        )
    base = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            if process.poll() is not None:
                pytest.fail(f"exited with {process.returncode}: {log.read_text()}")
            return requests.get(f"{base}/-/ready", timeout=5).status_code == 200

        wait_for(ready, what="the installed exporter to be ready")
        response = requests.get(f"{base}/metrics", timeout=10)
        assert response.status_code == 200
        samples = parse_samples(response.text)
        assert series(samples, "pinpointe_up") == {frozenset({("account", "demo")}): 1.0}
        assert series(samples, "pinpointe_exporter_build_info") == {
            frozenset({("version", _version())}): 1.0
        }
        recipients = series(samples, "pinpointe_autoresponder_recipients")
        assert len(recipients) >= 1 and all(v >= 0 for v in recipients.values())

        # The image's HEALTHCHECK, the installed console script, told the port.
        healthcheck = _runtime("HEALTHCHECK")
        argv = json.loads(healthcheck.partition("CMD ")[2])
        assert argv[0] == installed.script.name
        health = installed.run(
            installed.script, *argv[1:], f"--web.listen-address=127.0.0.1:{port}"
        )
        assert health.returncode == 0, health.stdout + health.stderr
        assert health.stdout.strip() == f"healthy: {base}/-/healthy: 200"
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)  # a clean exit (0) is asserted below
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    assert process.returncode == 0, log.read_text()
