"""mixin/: the monitoring mixin every rule, alert and dashboard is rendered from.

The committed files are its default rendering; a rendering with another _config moves
every selector, threshold and link, and a scenario story shows an alert moving with
its threshold. The three ways to consume it (docs/alerting.md) are exercised: the
committed files, jsonnet with an override file, and the mixin vendored elsewhere."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import _jsonnet
import pytest
import yaml

from tests.conftest import ROOT, SYSTEM_DEPS, require_tool
from tests.integration.dashboard_queries import iter_panels, queries
from tests.integration.scripts import render_module, scenarios_module

MIXIN = ROOT / "mixin"
SELECTOR = 'job="mail-exporter",cluster="eu-1"'
CUSTOM = f"""{{
  pinpointeSelector: '{SELECTOR}',
  runbookURLBase: 'https://wiki.example.com/email/runbooks',
  grafanaURL: 'https://grafana.example.com',
  complaintRate: 0.003,
  complaintRateWarning: 0.002,
  complaintRateCritical: 0.005,
  bounceRate: 0.07,
  alertFor+: {{ PinpointeHighBounceRate: '1h' }},
}}"""
# the exporter's own series (recorded series are already filtered by the selector)
EXPORTER_SERIES = re.compile(r"(?<![\w:\"])(pinpointe_[a-z_]+|up)(?![\w:])(\{[^}]*\})?")


@pytest.fixture(scope="module")
def default() -> dict[str, Any]:
    result: dict[str, Any] = render_module().evaluate()
    return result


@pytest.fixture(scope="module")
def custom() -> dict[str, Any]:
    result: dict[str, Any] = render_module().evaluate(CUSTOM)
    return result


def expressions(mixin: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) of every rule, alert, dashboard query and variable."""
    out = [
        (rule.get("record") or rule["alert"], rule["expr"])
        for part in ("rules", "alerts")
        for group in mixin[part]["groups"]
        for rule in group["rules"]
    ]
    for name, dashboard in mixin["dashboards"].items():
        out += [(f"{name} {where}", query) for where, query in queries(dashboard)]
    return out


def test_the_committed_files_are_the_default_rendering(default: dict[str, Any]) -> None:
    stale = render_module().check(default)
    assert stale == [], f"{stale}: run make mixin"


def test_the_check_finds_a_file_the_mixin_no_longer_renders() -> None:
    stale = render_module().check(render_module().evaluate("{ bounceRate: 0.07 }"))
    assert set(stale) == {
        "prometheus/alerts.yml",
        "grafana/dashboards/pinpointe-autoresponders.json",  # the rates' colours
        "deploy/kubernetes/base/generated/prometheusrules.yaml",
        "deploy/kubernetes/base/generated/dashboards.yaml",
    }


def test_monitoring_mixin_convention(default: dict[str, Any]) -> None:
    """Everything is a hidden field: the mixin itself renders to nothing."""
    assert json.loads(_jsonnet.evaluate_file(str(MIXIN / "mixin.libsonnet"))) == {}
    fields = _jsonnet.evaluate_snippet(
        "fields",
        "std.objectFieldsAll(import 'mixin.libsonnet')",
        jpathdir=[str(MIXIN)],
    )
    assert {"_config", "prometheusRules", "prometheusAlerts", "grafanaDashboards"} <= set(
        json.loads(fields)
    )
    assert default["config"]["pinpointeSelector"] == 'job="pinpointe"'
    assert (
        default["config"]["complaintRateWarning"],
        default["config"]["complaintRateCritical"],
    ) == (
        0.001,
        0.003,
    )
    assert set(default["dashboards"]) == {
        p.name for p in (ROOT / "grafana/dashboards").glob("*.json")
    }


def test_no_source_file_of_the_mixin_or_the_rules_is_over_400_lines() -> None:
    sources = [
        *MIXIN.rglob("*.libsonnet"),
        *MIXIN.rglob("*.py"),
        *(ROOT / "prometheus").rglob("*.py"),
    ]
    assert len(sources) > 10
    for path in sources:
        assert len(path.read_text().splitlines()) <= 400, path


def test_a_custom_selector_reaches_every_expression(
    default: dict[str, Any], custom: dict[str, Any]
) -> None:
    for mixin, selector in ((default, 'job="pinpointe"'), (custom, SELECTOR)):
        selects = 0
        for where, expr in expressions(mixin):
            for name, matchers in EXPORTER_SERIES.findall(expr):
                assert matchers.startswith("{" + selector), f"{where}: {name}{matchers}"
                selects += 1
        assert selects > 150
    for where, expr in expressions(custom):
        assert 'job="pinpointe"' not in expr, where


def test_custom_thresholds_durations_and_links(custom: dict[str, Any]) -> None:
    (thresholds, *_) = custom["alerts"]["groups"]
    values = {rule["labels"]["threshold"]: rule["expr"] for rule in thresholds["rules"]}
    assert values["complaint_rate"] == "vector(0.003)"
    assert values["account_complaint_rate_warning"] == "vector(0.002)"
    assert values["account_complaint_rate_critical"] == "vector(0.005)"
    assert values["bounce_rate"] == "vector(0.07)"
    alerts = {r["alert"]: r for g in custom["alerts"]["groups"] for r in g["rules"] if "alert" in r}
    assert alerts["PinpointeHighBounceRate"]["for"] == "1h"
    assert alerts["PinpointeAccountComplaintRateCritical"]["annotations"]["summary"].endswith(
        "0.5 %"
    )
    for name, alert in alerts.items():
        annotations = alert["annotations"]
        assert (
            annotations["runbook_url"] == f"https://wiki.example.com/email/runbooks#{name.lower()}"
        )
        assert annotations["dashboard_url"].startswith("https://grafana.example.com/d/pinpointe-")
    dashboard = custom["dashboards"]["pinpointe-autoresponders.json"]
    assert {"title": "Runbooks", "url": "https://wiki.example.com/email/runbooks"}.items() <= next(
        link for link in dashboard["links"] if link["title"] == "Runbooks"
    ).items()
    bounce = next(p for p in iter_panels(dashboard) if p["title"] == "Bounce rate, last 24 h")
    assert [s["value"] for s in bounce["fieldConfig"]["defaults"]["thresholds"]["steps"]] == [
        None,
        0.07,
    ]


def test_a_custom_rendering_passes_promtool(custom: dict[str, Any], tmp_path: Path) -> None:
    files = render_module().files(custom)
    paths = []
    for name in ("rules.yml", "alerts.yml"):
        paths.append(tmp_path / name)
        paths[-1].write_text(files[f"prometheus/{name}"])
    proc = subprocess.run(
        [require_tool("promtool", SYSTEM_DEPS), "check", "rules", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def story_fires(tmp_path: Path, complaint_rate: float) -> bool:
    """Story 7 of scenarios/everyday.yml (four complaints a day at 1,152 a day, 0.35 %),
    scraped as job mail-exporter in cluster eu-1, against the mixin rendered with the
    custom selector and this complaint threshold: is the alert firing on day 2 12:00?"""
    gen = scenarios_module()
    files = render_module().files(
        render_module().evaluate(
            CUSTOM.replace("complaintRate: 0.003", f"complaintRate: {complaint_rate}")
        )
    )
    for name in ("rules.yml", "alerts.yml"):
        (tmp_path / name).write_text(files[f"prometheus/{name}"])
    scenario = gen.load(ROOT / "prometheus/tests/scenarios/everyday.yml")
    scenario["stories"] = [s for s in scenario["stories"] if s["id"] == 7]
    scenario["days"] = 3
    scenario["checks"] = []
    test = gen.document(
        scenario, {"job": "mail-exporter", "cluster": "eu-1"}, ("rules.yml", "alerts.yml")
    )
    firing = 'ALERTS{alertname="PinpointeHighComplaintRate",alertstate="firing"}'
    test["tests"][0]["promql_expr_test"] = [
        {
            "expr": f"count({firing})",
            "eval_time": "2d12h",
            "exp_samples": [{"labels": "{}", "value": 1}],
        }
    ]
    path = tmp_path / "story_test.yml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    proc = subprocess.run(
        [require_tool("promtool", SYSTEM_DEPS), "test", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert "SUCCESS" in proc.stdout or "got: nil" in proc.stdout + proc.stderr, (
        proc.stdout + proc.stderr
    )
    return proc.returncode == 0


def test_a_story_alert_moves_with_its_threshold(tmp_path: Path) -> None:
    assert story_fires(tmp_path, 0.003), "0.35 % is above a 0.3 % threshold"
    assert not story_fires(tmp_path, 0.004), "and below a 0.4 % one"


def test_jsonnet_with_an_override_file(tmp_path: Path) -> None:
    """The second way: the override of docs/alerting.md, evaluated from the repository."""
    override = tmp_path / "pinpointe.jsonnet"
    override.write_text(
        "local mixin = (import 'mixin/mixin.libsonnet')\n"
        "  + { _config+:: { pinpointeSelector: 'job=\"email\"' } };\n"
        "mixin.prometheusAlerts\n"
    )
    # JSON is YAML: the output is a rule file as it is
    alerts = yaml.safe_load(_jsonnet.evaluate_file(str(override), jpathdir=[str(ROOT)]))
    expr = next(
        r["expr"]
        for g in alerts["groups"]
        for r in g["rules"]
        if r.get("alert") == "PinpointeExporterDown"
    )
    assert expr.strip() == 'up{job="email"} == 0'


def test_vendored_with_jsonnet_bundler_layout(tmp_path: Path, default: dict[str, Any]) -> None:
    """The third way: jb puts the mixin under vendor/; it imports nothing outside itself
    (jsonnetfile.json: no dependencies), so a copy there renders the same."""
    assert json.loads((MIXIN / "jsonnetfile.json").read_text())["dependencies"] == []
    shutil.copytree(
        MIXIN,
        tmp_path / "vendor" / "pinpointe-mixin",
        ignore=shutil.ignore_patterns("*.py", "__pycache__"),
    )
    snippet = "(import 'pinpointe-mixin/mixin.libsonnet').prometheusRules"
    vendored = json.loads(
        _jsonnet.evaluate_snippet("vendored", snippet, jpathdir=[str(tmp_path / "vendor")])
    )
    assert vendored == default["rules"]
