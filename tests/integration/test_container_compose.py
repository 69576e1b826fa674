"""deploy/docker-compose.yml brought up for real with podman-compose: the exporter (demo mode),
Prometheus with the project's rules and Alertmanager, on the Compose network as written.

The exporter's image is built by the Compose file's own `build:` from the unchanged
Dockerfile; Prometheus and Alertmanager are stand-ins made from Debian's packages
(tests/integration/engine.py says what stand-ins prove). Grafana is left out: no image of it
can be made here. tests/integration/containers/compose.override.yml lists what the test
changes, and why: a run's own image name, ports podman picks, 5s scrape and evaluation
intervals, PinpointeExporterDown's `for` cut to 10s.

The tests share one stack and run in file order; the last one stops the exporter.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.conftest import require_tool, wait_for
from tests.integration.engine import FILES, ROOT, Engine, engine_session, unique

COMPOSE = ROOT / "deploy" / "docker-compose.yml"
OVERRIDE = FILES / "compose.override.yml"
SERVICES = ("exporter", "prometheus", "alertmanager")
SCALED_INTERVAL = "5s"
SCALED_ALERT = ("PinpointeExporterDown", "10s")
RULE_FILES = {
    "/etc/prometheus/rules/rules.yml": ROOT / "prometheus" / "rules.yml",
    "/etc/prometheus/rules/alerts.yml": ROOT / "prometheus" / "alerts.yml",
}
TIMEOUT = 180.0  # only stops a hung test


def scaled_prometheus_config(directory: Path) -> Path:
    """deploy/compose/prometheus.yml, scraping and evaluating every SCALED_INTERVAL."""
    config = yaml.safe_load((ROOT / "deploy" / "compose" / "prometheus.yml").read_text())
    config["global"].update(scrape_interval=SCALED_INTERVAL, evaluation_interval=SCALED_INTERVAL)
    for job in config["scrape_configs"]:
        for key in ("scrape_interval", "scrape_timeout"):
            if key in job:
                job[key] = SCALED_INTERVAL
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def scaled_rules(directory: Path) -> tuple[Path, Path]:
    """prometheus/rules.yml and alerts.yml with every group evaluated at the stack's scaled
    interval (the slow groups' own 4m and 20m would put their first evaluation minutes
    away) and SCALED_ALERT's `for` shortened; the rules themselves as shipped."""
    written = []
    for container_path in RULE_FILES:
        document = yaml.safe_load(RULE_FILES[container_path].read_text())
        for group in document["groups"]:
            group.pop("interval", None)
            for rule in group["rules"]:
                if rule.get("alert") == SCALED_ALERT[0]:
                    rule["for"] = SCALED_ALERT[1]
        path = directory / Path(container_path).name
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        written.append(path)
    rules, alerts = written
    return rules, alerts


@dataclass(frozen=True)
class Stack:
    podman: Engine
    compose: tuple[str, ...]

    def container(self, service: str) -> str:
        project = self.compose[self.compose.index("--project-name") + 1]
        listed = self.podman.podman(
            "ps",
            "--all",
            "--format=json",
            f"--filter=label=com.docker.compose.project={project}",
            f"--filter=label=com.docker.compose.service={service}",
        )
        ((name,),) = [c["Names"] for c in json.loads(listed)]
        return str(name)

    def url(self, service: str, port: int) -> str:
        return f"http://127.0.0.1:{self.podman.published_port(self.container(service), port)}"

    def prometheus(self, path: str) -> Any:
        response = requests.get(self.url("prometheus", 9090) + path, timeout=10)
        response.raise_for_status()
        return response.json()["data"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    podman_compose = require_tool("podman-compose", "the test extras", skip_outside_ci=True)
    scaled = tmp_path_factory.mktemp("compose")
    for path in (scaled_prometheus_config(scaled), *scaled_rules(scaled)):
        path.chmod(0o444)  # the stand-ins run as nobody, as the official images do
    with engine_session() as podman:
        services = yaml.safe_load(COMPOSE.read_text())["services"]
        podman.stand_ins(*(services[s]["image"] for s in ("prometheus", "alertmanager")))
        image = unique("localhost/pinpointe-exporter-compose")
        # Filled in here: podman-compose does not interpolate inside `!override`.
        override = scaled / "compose.override.yml"
        override.write_text(
            string.Template(OVERRIDE.read_text()).substitute(
                PINPOINTE_TEST_IMAGE=image,
                PINPOINTE_TEST_PROMETHEUS_CONFIG=scaled / "prometheus.yml",
                PINPOINTE_TEST_RULES=scaled / "rules.yml",
                PINPOINTE_TEST_ALERTS=scaled / "alerts.yml",
            )
        )
        compose = (
            podman_compose,
            "--project-name",
            unique("pinpointe-test"),
            "--file",
            str(COMPOSE),
            "--file",
            str(override),
        )
        try:
            podman.build(image, *compose, "build", "exporter")
            podman.run(*compose, "up", "--detach", *SERVICES, timeout=600)
            yield Stack(podman, compose)
        finally:
            podman.run(*compose, "down", "--volumes", "--timeout", "0", check=False, timeout=600)


def targets(stack: Stack) -> dict[str, tuple[str, str]]:
    active = stack.prometheus("/api/v1/targets?state=active")["activeTargets"]
    return {t["labels"]["job"]: (t["health"], t["scrapeUrl"]) for t in active}


def test_prometheus_scrapes_the_exporter_by_its_service_name(stack: Stack) -> None:
    wait_for(
        lambda: {health for health, _ in targets(stack).values()} == {"up"},
        timeout=TIMEOUT,
        what="every target up",
    )
    assert targets(stack) == {
        "pinpointe": ("up", "http://exporter:9863/metrics"),
        "alertmanager": ("up", "http://alertmanager:9093/metrics"),
        "prometheus": ("up", "http://localhost:9090/metrics"),
    }
    result = stack.prometheus('/api/v1/query?query=pinpointe_up{job="pinpointe"}')["result"]
    assert [(r["metric"]["account"], r["value"][1]) for r in result] == [("demo", "1")]


def _rules(stack: Stack) -> list[dict[str, Any]]:
    groups = stack.prometheus("/api/v1/rules")["groups"]
    return [{**rule, "file": group["file"]} for group in groups for rule in group["rules"]]


def test_every_rule_file_is_loaded_and_evaluates_without_error(stack: Stack) -> None:
    shipped = {
        (container_path, rule.get("record") or rule["alert"])
        for container_path, source in RULE_FILES.items()
        for group in yaml.safe_load(source.read_text())["groups"]
        for rule in group["rules"]
    }
    loaded = {(rule["file"], rule["name"]) for rule in _rules(stack)}
    assert loaded == shipped
    wait_for(
        lambda: all(rule["health"] != "unknown" for rule in _rules(stack)),
        timeout=TIMEOUT,
        what="every rule evaluated once",
    )
    failing = {rule["name"]: rule.get("lastError") for rule in _rules(stack)}
    assert {k: v for k, v in failing.items() if v} == {}
    assert {rule["health"] for rule in _rules(stack)} == {"ok"}


def test_the_exporters_compose_healthcheck_passes(stack: Stack) -> None:
    exporter = stack.container("exporter")
    config = stack.podman.inspect(exporter)["Config"]["Healthcheck"]
    assert config["Test"] == ["CMD", "pinpointe-exporter", "--healthcheck"]
    stack.podman.podman("healthcheck", "run", exporter)
    health = stack.podman.inspect(exporter)["State"]["Health"]
    assert health["Status"] == "healthy", health


def active_alerts(stack: Stack) -> list[dict[str, str]]:
    response = requests.get(stack.url("alertmanager", 9093) + "/api/v2/alerts", timeout=10)
    response.raise_for_status()
    return [a["labels"] for a in response.json() if a["status"]["state"] == "active"]


def test_an_alert_reaches_alertmanager_when_the_exporter_stops(stack: Stack) -> None:
    discovered = stack.prometheus("/api/v1/alertmanagers")["activeAlertmanagers"]
    assert [a["url"] for a in discovered] == ["http://alertmanager:9093/api/v2/alerts"]
    assert active_alerts(stack) == []
    stack.podman.run(*stack.compose, "stop", "exporter")
    name, _ = SCALED_ALERT
    (labels,) = wait_for(
        lambda: [a for a in active_alerts(stack) if a["alertname"] == name],
        timeout=TIMEOUT,
        what=f"{name} in Alertmanager",
    )
    assert {k: labels.get(k) for k in ("job", "instance", "severity")} == {
        "job": "pinpointe",
        "instance": "exporter:9863",
        "severity": "critical",
    }
