"""prometheus/rules.yml and alerts.yml (rendered from mixin/): promtool checks and unit
tests, plus the house rules promtool cannot know (naming, annotations, a test for every
rule)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.collector.sharding import ShardCollector
from exporter.exposition import ALL_FAMILIES
from tests.conftest import ROOT, require_tool

PROM = ROOT / "prometheus"
RULE_FILES = [PROM / "rules.yml", PROM / "alerts.yml"]
TEST_FILES = sorted((PROM / "tests").glob("*.yml"))
INSTALL_HINT = "apt-get install prometheus prometheus-alertmanager (or scripts/install-system-deps)"
# A constant, not an aggregation: it has no level or operations part.
THRESHOLD_SERIES = "pinpointe:alert_threshold"
# Alerts about a whole exporter job or process, not about an account.
JOB_ALERTS = {
    "PinpointeExporterDown",
    "PinpointeExporterTargetMissing",
    "PinpointeExporterMetricsMissing",
    "PinpointeExporterConfigReloadFailed",
    "PinpointeExporterShardMissing",
}
# Served by collector/sharding.py's ShardCollector (only with --shard), not by ALL_FAMILIES.
SHARD_METRICS = {family.name for family in ShardCollector(0, 1).collect()}
RUNBOOK_PREFIX = (
    "https://github.com/pinpointe-exporter/pinpointe-exporter/blob/main/docs/runbooks.md#"
)
ANNOTATIONS = {"summary", "description", "figure", "runbook_url", "dashboard_url"}


def promtool() -> str:
    return require_tool("promtool", INSTALL_HINT)


def rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def alerts() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "alert" in rule]


def records() -> list[str]:
    return sorted({rule["record"] for rule in rules() if "record" in rule})


def unit_tests() -> list[dict[str, Any]]:
    return [test for path in TEST_FILES for test in yaml.safe_load(path.read_text())["tests"]]


def test_promtool_check_rules() -> None:
    proc = subprocess.run(
        [promtool(), "check", "rules", *map(str, RULE_FILES)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("SUCCESS") == len(RULE_FILES)


def test_there_are_promtool_unit_tests() -> None:
    assert len(TEST_FILES) >= 4, TEST_FILES


@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda path: path.name)
def test_promtool_unit_tests_pass(test_file: Path) -> None:
    """One promtool per file, so a failure names its file."""
    proc = subprocess.run(
        [promtool(), "test", "rules", str(test_file)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=PROM / "tests",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("SUCCESS") == 1, proc.stdout


def test_promtool_unit_tests_can_fail(tmp_path: Path) -> None:
    """A threshold changed in alerts.yml (its one place there, the threshold series, as
    a user without jsonnet would) must break the tests that describe it."""
    (tmp_path / "tests").mkdir()
    (tmp_path / "rules.yml").write_text((PROM / "rules.yml").read_text())
    doc = yaml.safe_load((PROM / "alerts.yml").read_text())
    (threshold,) = [
        rule
        for rule in doc["groups"][0]["rules"]
        if rule["labels"] == {"threshold": "stale_poll_intervals"}
    ]
    assert threshold["expr"] == "vector(3)"
    threshold["expr"] = "vector(30)"
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(doc))
    test_file = tmp_path / "tests" / "alerts_exporter_test.yml"
    suite = yaml.safe_load((PROM / "tests" / test_file.name).read_text())
    suite["tests"] = [
        test
        for test in suite["tests"]
        if any(
            case.get("alertname") == "PinpointeDataStale"
            for case in test.get("alert_rule_test", [])
        )
    ]
    assert suite["tests"], "alerts_exporter_test.yml has no PinpointeDataStale test"
    test_file.write_text(yaml.safe_dump(suite, sort_keys=False))
    proc = subprocess.run(
        [promtool(), "test", "rules", str(test_file)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    assert "PinpointeDataStale" in proc.stdout + proc.stderr


def test_scenario_tests_are_generated() -> None:
    """prometheus/tests/scenarios_*test.yml are what generate_scenarios.py writes."""
    proc = subprocess.run(
        [sys.executable, str(PROM / "tests" / "generate_scenarios.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr


def test_recording_rules_follow_level_metric_operations() -> None:
    """level:metric:operations; a ratio is <a>_per_<b> with an operation starting with
    `ratio`; no invented `_rate` (it reads like rate())."""
    for name in records():
        if name == THRESHOLD_SERIES:
            continue
        level, metric, operations = name.split(":")
        assert re.fullmatch(r"account(_autoresponder)?", level), name
        assert metric.startswith("pinpointe_autoresponder_"), name
        assert "_rate" not in metric, name
        assert re.fullmatch(
            r"(ratio|delta1h|delta24h|delta24h_offset7d|ratio_delta24h|count)", operations
        ), name
        assert ("_per_" in metric) == operations.startswith("ratio"), name


def test_rules_read_few_samples() -> None:
    """No range selector longer than an hour: 24 h and 7 d figures come from hourly
    two-point differences summed by a subquery, not from delta(x[24h]) over every
    sample (14,400 samples per series and evaluation at a 1 m scrape)."""
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    for rule in rules():
        for amount, unit in re.findall(r"\[(\d+)([smhdw])\]", rule["expr"]):
            assert int(amount) * seconds[unit] <= 3600, rule.get("record") or rule["alert"]
        for _, step in re.findall(r"\[(\w+):(\w+)\]", rule["expr"]):
            assert step == "1h", rule.get("record") or rule["alert"]


def test_alerts_are_named_labelled_and_explained() -> None:
    names = [rule["alert"] for rule in alerts()]
    assert len(names) == len(set(names)), "duplicate alert names"
    for rule in alerts():
        name = rule["alert"]
        assert re.fullmatch(r"Pinpointe(?:[A-Z][a-z0-9]*)+", name), name
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        annotations = rule["annotations"]
        assert set(annotations) == ANNOTATIONS, name
        text = annotations["summary"] + annotations["description"]
        if name not in JOB_ALERTS:
            assert "$labels.account" in text, f"{name} does not name the account"
        if "autoresponder_name" in rule["expr"] or "account_autoresponder:" in rule["expr"]:
            assert "$labels.autoresponder_name" in text, f"{name} does not name the autoresponder"
            assert "$labels.autoresponder_id" in text, name
        # says what to do: at least one imperative sentence in the description
        assert re.search(
            r"\b(check|find|review|pause|update|restart|follow|fix|remove|raise|run)\b",
            annotations["description"],
            re.IGNORECASE,
        ), f"{name}: the description does not say what to do"


def test_every_alert_has_a_firing_and_a_silent_unit_test() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for test in unit_tests():
        for case in test.get("alert_rule_test", []):
            exp = case.get("exp_alerts") or []
            (firing if exp else silent).add(case["alertname"])
            for alert in exp:
                # exact labels and annotations, not a subset
                assert "severity" in alert["exp_labels"], case
                assert set(alert["exp_annotations"]) == ANNOTATIONS
    names = {rule["alert"] for rule in alerts()}
    assert names - firing == set(), "alerts without a firing test case"
    assert names - silent == set(), "alerts without a non-firing test case"


def test_every_recording_rule_is_value_checked() -> None:
    checked: set[str] = set()
    zero_checked: set[str] = set()
    for test in unit_tests():
        for case in test.get("promql_expr_test", []):
            samples = case.get("exp_samples") or []
            for sample in samples:
                checked.add(sample["labels"].split("{")[0])
            if not samples:
                zero_checked.update(re.findall(r"[a-z_]+:[a-z_]+:[a-z0-9_]+", case["expr"]))
                if "__name__=~" in case["expr"]:
                    zero_checked.add(case["expr"])
    missing = set(records()) - checked
    assert missing == set(), f"recording rules never value-checked: {sorted(missing)}"
    # the zero-recipients cases exist for the lifetime ratios and the 24 h ratios
    assert any(":ratio" in expr and "Draft" in expr for expr in zero_checked)
    assert any("ratio_delta24h" in expr and "Draft" in expr for expr in zero_checked)


def test_rules_only_use_metrics_the_exporter_exports() -> None:
    exported = {family.name for family in ALL_FAMILIES} | SHARD_METRICS
    recorded = set(records())
    for rule in rules():
        for name in re.findall(r"(?<![:\w])pinpointe_[a-z_]+(?![:\w.])", rule["expr"]):
            assert name in exported, f"{name} is not exported by exporter/exposition/render.py"
        for name in re.findall(r"(?<![:\w])[a-z_]+:[a-z_]+(?::[a-z0-9_]+)?(?![:\w])", rule["expr"]):
            assert name in recorded, f"{name} is not recorded by any rule"


def runbook_anchors() -> set[str]:
    """GitHub's anchors of the headings of docs/runbooks.md."""
    anchors = set()
    for line in (ROOT / "docs" / "runbooks.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def test_every_alert_links_its_runbook() -> None:
    anchors = runbook_anchors()
    for rule in alerts():
        url = rule["annotations"]["runbook_url"]
        assert url == RUNBOOK_PREFIX + rule["alert"].lower(), rule["alert"]
        assert url.split("#")[1] in anchors, f"docs/runbooks.md has no section {rule['alert']}"


def test_engagement_alerts_hold_across_a_gap() -> None:
    """keep_firing_for (Prometheus 2.42+) on every alert that reads engagement figures."""
    for rule in alerts():
        if "pinpointe_autoresponder_" in rule["expr"] and "__name__" not in rule["expr"]:
            assert rule.get("keep_firing_for"), rule["alert"]


def amtool() -> str:
    return require_tool("amtool", INSTALL_HINT)


def test_alertmanager_config_checks_and_routes() -> None:
    config = PROM / "alertmanager.yml"
    proc = subprocess.run(
        [amtool(), "check-config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    expected = {
        ("PinpointeHighComplaintRate", "warning"): "email-marketing",
        ("PinpointeAutoresponderStoppedSending", "warning"): "email-marketing",
        ("PinpointeExporterDown", "critical"): "on-call",
        ("PinpointeAccountComplaintRateCritical", "critical"): "on-call,email-marketing",
    }
    for (name, severity), receivers in expected.items():
        proc = subprocess.run(
            [amtool(), "config", "routes", "test", f"--config.file={config}",
             f"alertname={name}", f"severity={severity}", "account=acme"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert proc.stdout.strip() == receivers, (name, proc.stdout, proc.stderr)


def test_marketing_is_notified_once_a_day() -> None:
    """A 24 h rate moves over hours: one notification a day per alert, not six."""
    route = yaml.safe_load((PROM / "alertmanager.yml").read_text())["route"]
    assert route["receiver"] == "email-marketing"
    assert route["repeat_interval"] == "24h"
    for child in route["routes"]:
        if child["receiver"] == "email-marketing":
            assert "repeat_interval" not in child


def test_recorded_series_stay_within_the_lookback() -> None:
    """A group evaluated less often than Prometheus' 5m lookback records series that
    vanish between its evaluations: only the hourly increases may, because nothing reads
    them but a range (max_over_time(...:delta1h[59m59s999ms]))."""
    seconds = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    hourly = set()
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            interval = sum(
                int(n) * seconds[u]
                for n, u in re.findall(r"(\d+)(ms|s|m|h)", group.get("interval", "1m"))
            )
            if interval >= 300:
                hourly |= {rule["record"] for rule in group["rules"]}
    assert hourly and all(name.endswith(":delta1h") for name in hourly), hourly
    for rule in rules():
        for name in hourly:
            for use in re.finditer(re.escape(name) + r"(\[[^\]]*\])?", rule["expr"]):
                assert use.group(1), (
                    f"{rule.get('record') or rule['alert']} reads {name} at an instant"
                )
