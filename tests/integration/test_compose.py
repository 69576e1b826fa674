"""deploy/docker-compose.yml: valid Compose, pinned images, and every mounted file exists.

No Docker engine runs here, so the stack is checked piece by piece: the Compose
files against the Compose specification schema that check-jsonschema ships,
each bind mount against the repository, the Prometheus and Alertmanager
configurations with promtool and amtool (mounted files put back at their host
paths), the Grafana provisioning against the mounted dashboards, and the real
mode's exporter configuration with the exporter's own --config.check.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, promtool, require_tool

DEPLOY = ROOT / "deploy"
BASE = DEPLOY / "docker-compose.yml"
REAL = DEPLOY / "docker-compose.real.yml"
COMPOSE_FILES = [BASE, REAL]

_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::?-(?P<default>[^}]*))?\}")


def interpolate(value: str) -> str:
    """Compose-style ${VAR:-default} with an empty environment: the shipped defaults."""

    def sub(match: re.Match[str]) -> str:
        default = match.group("default")
        assert default is not None, f"{match.group(0)} has no default: the file needs a user env"
        return default

    return _VAR.sub(sub, value)


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def _tool(name: str) -> str:
    return require_tool(
        name, "scripts/install-system-deps or the test extras", skip_outside_ci=True
    )


def bind_mounts(service: dict[str, Any]) -> list[tuple[Path, str]]:
    """(host path, container path) of each bind mount; named volumes are skipped."""
    mounts: list[tuple[Path, str]] = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            if volume.get("type") != "bind":
                continue
            source, target = interpolate(volume["source"]), volume["target"]
        else:
            source, target, *_ = interpolate(volume).split(":")
            if not source.startswith((".", "/", "~")):
                continue  # a named volume
        mounts.append(((DEPLOY / source).resolve(), target))
    return mounts


@pytest.fixture(scope="module")
def base() -> dict[str, Any]:
    return load(BASE)


@pytest.fixture(scope="module")
def real() -> dict[str, Any]:
    return load(REAL)


def _check_jsonschema(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_compose_files_match_the_compose_spec() -> None:
    proc = _check_jsonschema(*COMPOSE_FILES)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_schema_check_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  exporter:\n    image: x:1.0.0\n    comand: [--demo]\n")
    proc = _check_jsonschema(broken)
    assert proc.returncode == 1
    assert "comand" in proc.stdout + proc.stderr


def test_stack_has_the_four_services(base: dict[str, Any]) -> None:
    assert set(base["services"]) == {"exporter", "prometheus", "alertmanager", "grafana"}


def test_every_mounted_file_exists_in_the_repository(
    base: dict[str, Any], real: dict[str, Any]
) -> None:
    checked = 0
    for compose in (base, real):
        for name, service in compose["services"].items():
            for host, target in bind_mounts(service):
                assert host.is_relative_to(ROOT), f"{name}: {host} is outside the repository"
                assert host.exists(), f"{name}: mounts {host.relative_to(ROOT)} (missing)"
                if target.endswith((".yml", ".yaml", ".json")):
                    assert host.is_file(), f"{name}: {host} should be a file for {target}"
                checked += 1
    assert checked >= 8


def test_build_context_has_the_dockerfile(base: dict[str, Any]) -> None:
    build = base["services"]["exporter"]["build"]
    context = (DEPLOY / build["context"]).resolve()
    assert (context / build.get("dockerfile", "Dockerfile")).is_file()
    assert context == ROOT


def test_images_are_pinned(base: dict[str, Any]) -> None:
    for name, service in base["services"].items():
        if "build" in service:
            continue
        image = service["image"]
        assert re.fullmatch(r"[a-z0-9./-]+:v?\d+\.\d+\.\d+(@sha256:[0-9a-f]{64})?", image), (
            f"{name}: {image} is not pinned to an exact version"
        )


def test_ports_are_published_on_loopback_only(base: dict[str, Any]) -> None:
    for name, service in base["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on all interfaces"


def _secret_mounts(compose: dict[str, Any], service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host file of each Compose secret the service uses."""
    mounts: dict[str, Path] = {}
    for entry in service.get("secrets", []):
        name = entry if isinstance(entry, str) else entry["source"]
        target = name if isinstance(entry, str) else entry.get("target", name)
        path = target if target.startswith("/") else f"/run/secrets/{target}"
        mounts[path] = (DEPLOY / interpolate(compose["secrets"][name]["file"])).resolve()
    return mounts


def test_demo_by_default_and_real_mode_switch(base: dict[str, Any], real: dict[str, Any]) -> None:
    assert base["services"]["exporter"]["command"] == ["--demo"]
    assert "volumes" not in base["services"]["exporter"], "demo mode needs no mounts"
    exporter = real["services"]["exporter"]
    assert exporter["command"] == ["--config.file=/etc/pinpointe-exporter/config.yaml"]
    targets = [target for _, target in bind_mounts(exporter)]
    assert targets == ["/etc/pinpointe-exporter/config.yaml"]


def test_real_mode_token_is_a_secret_file_never_in_the_environment(
    real: dict[str, Any],
) -> None:
    exporter = real["services"]["exporter"]
    # Nothing that `docker compose config` or `docker inspect` would print.
    assert "env_file" not in exporter and "environment" not in exporter
    secrets = _secret_mounts(real, exporter)
    assert list(secrets) == ["/run/secrets/pinpointe_token"]
    (token_file,) = secrets.values()
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", str(token_file)], cwd=ROOT, capture_output=True
    )
    assert ignored.returncode == 0, f"{token_file.relative_to(ROOT)} must be git-ignored"
    (host, _), *_ = bind_mounts(exporter)
    config = load(host)
    assert config["accounts"]
    for account in config["accounts"]:
        assert "usertoken" not in account
        assert account["usertoken_file"] in secrets


def test_real_mode_config_passes_the_exporters_config_check(
    real: dict[str, Any], tmp_path: Path
) -> None:
    pytest.importorskip("exporter.cli", reason="core exporter not there yet")
    exporter = real["services"]["exporter"]
    (host, _), *_ = bind_mounts(exporter)
    # The secret's container path put back to a local file holding a test token.
    config = host.read_text()
    for target in _secret_mounts(real, exporter):
        local = tmp_path / Path(target).name
        local.write_text("compose-test-token-0123\n")
        config = config.replace(target, str(local))
    (tmp_path / "config.yaml").write_text(config)

    def check() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "exporter",
                "--config.check",
                f"--config.file={tmp_path / 'config.yaml'}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )

    # As shipped, the user name is a placeholder that --config.check refuses ...
    unedited = check()
    assert unedited.returncode == 2
    assert "accounts[0].username: looks like a placeholder" in unedited.stderr
    # ... and once the user has put theirs in, the configuration passes.
    (tmp_path / "config.yaml").write_text(config.replace("replace-with-your-username", "DRBrel2"))
    proc = check()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "compose-test-token-0123" not in proc.stdout + proc.stderr
    assert "main" in proc.stdout


def _materialise(service: dict[str, Any], config_target: str, tmp_path: Path) -> Path:
    """Copy a service's config to tmp, mounted container paths put back to host paths."""
    mounts = bind_mounts(service)
    (config_host,) = [host for host, target in mounts if target == config_target]
    text = config_host.read_text()
    for host, target in mounts:
        if target != config_target:
            text = text.replace(target, str(host))
    out = tmp_path / Path(config_target).name
    out.write_text(text)
    return out


def test_prometheus_config_and_rules_are_valid(base: dict[str, Any], tmp_path: Path) -> None:
    prometheus = base["services"]["prometheus"]
    config = _materialise(prometheus, "/etc/prometheus/prometheus.yml", tmp_path)
    rule_files = load(config)["rule_files"]
    assert rule_files, "the project's rules are loaded"
    for rule_file in rule_files:
        assert Path(rule_file).is_file(), f"rule file {rule_file} is not a mounted repository file"
    proc = promtool("check", "config", str(config))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout + proc.stderr


def test_prometheus_scrapes_the_exporter_and_alerts_to_alertmanager(
    base: dict[str, Any],
) -> None:
    (host, _), *_ = [
        m for m in bind_mounts(base["services"]["prometheus"]) if m[1].endswith("prometheus.yml")
    ]
    config = load(host)
    targets = [
        target
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    ]
    assert "exporter:9863" in targets
    alertmanagers = [
        target
        for am in config["alerting"]["alertmanagers"]
        for static in am["static_configs"]
        for target in static["targets"]
    ]
    assert alertmanagers == ["alertmanager:9093"]
    assert "9093:9093" in base["services"]["alertmanager"]["ports"][0]


def test_alertmanager_config_is_valid(base: dict[str, Any], tmp_path: Path) -> None:
    config = _materialise(
        base["services"]["alertmanager"], "/etc/alertmanager/alertmanager.yml", tmp_path
    )
    proc = subprocess.run(
        [_tool("amtool"), "check-config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _container_to_host(service: dict[str, Any], container_path: str) -> Path:
    for host, target in bind_mounts(service):
        if container_path == target or container_path.startswith(target.rstrip("/") + "/"):
            return host / Path(container_path).relative_to(target)
    raise AssertionError(f"{container_path} is not mounted into the container")


def test_grafana_is_provisioned_with_prometheus_and_the_dashboards(
    base: dict[str, Any],
) -> None:
    grafana = base["services"]["grafana"]
    assert grafana["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    datasources_dir = _container_to_host(grafana, "/etc/grafana/provisioning/datasources")
    datasources = [
        ds for f in sorted(datasources_dir.glob("*.yml")) for ds in load(f)["datasources"]
    ]
    assert [(ds["type"], ds["url"], ds["isDefault"]) for ds in datasources] == [
        ("prometheus", "http://prometheus:9090", True)
    ]
    providers_dir = _container_to_host(grafana, "/etc/grafana/provisioning/dashboards")
    providers = [p for f in sorted(providers_dir.glob("*.yml")) for p in load(f)["providers"]]
    assert len(providers) == 1
    dashboards_dir = _container_to_host(grafana, providers[0]["options"]["path"])
    assert dashboards_dir == ROOT / "grafana" / "dashboards"
    dashboards = sorted(dashboards_dir.glob("*.json"))
    assert dashboards, "grafana/dashboards/ has no dashboards to provision"
    for dashboard in dashboards:
        assert json.loads(dashboard.read_text())["title"]


def _jobs_the_rules_expect() -> set[str]:
    jobs: set[str] = set()
    for path in sorted((ROOT / "prometheus").glob("*.yml")):
        data = load(path)
        if isinstance(data, dict):
            for group in data.get("groups", []):
                for rule in group["rules"]:
                    jobs.update(re.findall(r'job\s*=~?\s*"([^"]+)"', str(rule["expr"])))
    return jobs


def test_scrape_job_is_the_one_the_alerts_expect(base: dict[str, Any]) -> None:
    (host, _), *_ = [
        m for m in bind_mounts(base["services"]["prometheus"]) if m[1].endswith("prometheus.yml")
    ]
    (job,) = [
        j["job_name"]
        for j in load(host)["scrape_configs"]
        if any("exporter:9863" in s["targets"] for s in j.get("static_configs", []))
    ]
    assert _jobs_the_rules_expect() <= {job}


def test_every_rule_file_is_loaded(base: dict[str, Any]) -> None:
    # A new prometheus/*.yml rule file must reach Compose's Prometheus too.
    prometheus = base["services"]["prometheus"]
    (config_host, _), *_ = [m for m in bind_mounts(prometheus) if m[1].endswith("prometheus.yml")]
    loaded = {
        host
        for host, target in bind_mounts(prometheus)
        if target in load(config_host)["rule_files"]
    }
    rule_files = {
        path.resolve()
        for path in (ROOT / "prometheus").glob("*.yml")
        if isinstance(load(path), dict) and "groups" in load(path)
    }
    assert loaded == rule_files


def test_grafana_opens_on_a_provisioned_dashboard(base: dict[str, Any]) -> None:
    grafana = base["services"]["grafana"]
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert json.loads(_container_to_host(grafana, home).read_text())["title"]


# -- the exporter service: hardening, health, mounts --------------------------------


def _mebibytes(value: str) -> float:
    """Compose/Docker byte values (768m = 768 MiB) and Kubernetes quantities (768Mi)."""
    match = re.fullmatch(r"(\d+)([kmg]i?b?)?", value.lower())
    assert match, value
    factors = {"k": 2**10, "m": 2**20, "g": 2**30}
    unit = (match[2] or " ")[0]
    return int(match[1]) * factors.get(unit, 1) / 2**20


def test_exporter_is_hardened_like_the_kubernetes_pod(base: dict[str, Any]) -> None:
    exporter = base["services"]["exporter"]
    assert exporter["read_only"] is True
    (tmpfs,) = exporter["tmpfs"]
    assert tmpfs.split(":")[0] == "/tmp"
    assert exporter["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in exporter["security_opt"]
    # The same memory limit as the Kubernetes manifests (docs/deploy.md: "Memory").
    deployment = yaml.safe_load((DEPLOY / "kubernetes/base/deployment.yaml").read_text())
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert _mebibytes(exporter["mem_limit"]) == _mebibytes(
        container["resources"]["limits"]["memory"]
    )


def _web_flags(argv: list[str]) -> list[str]:
    return [a for a in argv if a.startswith(("--web.listen-address", "--web.config.file"))]


def test_exporter_healthcheck_is_the_exporters_own_probe(
    base: dict[str, Any], real: dict[str, Any]
) -> None:
    check = base["services"]["exporter"]["healthcheck"]
    assert check["test"][:3] == ["CMD", "pinpointe-exporter", "--healthcheck"]
    # It probes what the command serves: the same web flags, whatever the mode.
    for compose in (base, real):
        exporter = compose["services"]["exporter"]
        test = exporter.get("healthcheck", check)["test"]
        assert _web_flags(test) == _web_flags(exporter["command"])
    # Prometheus starts once the exporter answers, Grafana once Prometheus does.
    assert base["services"]["prometheus"]["depends_on"] == {
        "exporter": {"condition": "service_healthy"}
    }
    assert base["services"]["grafana"]["depends_on"] == {
        "prometheus": {"condition": "service_healthy"}
    }
    assert "healthcheck" in base["services"]["prometheus"]


def test_bind_mounts_never_create_missing_host_paths(
    base: dict[str, Any], real: dict[str, Any]
) -> None:
    # Short syntax (./x:/y) turns a missing ./x into an empty directory at `up`.
    checked = 0
    for compose in (base, real):
        for name, service in compose["services"].items():
            for volume in service.get("volumes", []):
                if isinstance(volume, str):
                    source = volume.split(":")[0]
                    assert not source.startswith((".", "/", "~", "$")), (
                        f"{name}: bind mount {volume!r} in short syntax"
                    )
                    continue
                if volume["type"] == "bind":
                    assert volume["bind"]["create_host_path"] is False, f"{name}: {volume}"
                    assert volume["read_only"] is True, f"{name}: {volume}"
                    checked += 1
    assert checked >= 8
