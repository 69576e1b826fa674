"""prometheus/rules.yml and alerts.yml: promtool checks and unit tests, plus the
house rules promtool cannot know (naming, annotations, a test for every rule)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from exporter.metrics import ALL_FAMILIES
from tests.conftest import require_tool

ROOT = Path(__file__).resolve().parent.parent
PROM = ROOT / "prometheus"
RULE_FILES = [PROM / "rules.yml", PROM / "alerts.yml"]
TEST_FILES = sorted((PROM / "tests").glob("*.yml"))
INSTALL_HINT = "apt-get install prometheus prometheus-alertmanager (or scripts/install-system-deps)"
# A constant, not an aggregation: it has no level or operations part.
THRESHOLD_SERIES = "pinpointe:alert_threshold"


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


def test_promtool_unit_tests_pass() -> None:
    assert TEST_FILES, "no promtool test files under prometheus/tests/"
    proc = subprocess.run(
        [promtool(), "test", "rules", *map(str, TEST_FILES)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=PROM / "tests",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("SUCCESS") == len(TEST_FILES), proc.stdout


def test_promtool_unit_tests_can_fail(tmp_path: Path) -> None:
    """A threshold changed in alerts.yml must break the tests that describe it."""
    (tmp_path / "tests").mkdir()
    (tmp_path / "rules.yml").write_text((PROM / "rules.yml").read_text())
    changed = (PROM / "alerts.yml").read_text().replace("expr: vector(0.05)", "expr: vector(0.2)")
    (tmp_path / "alerts.yml").write_text(changed)
    test_file = tmp_path / "tests" / "alerts_autoresponder_test.yml"
    test_file.write_text((PROM / "tests" / test_file.name).read_text())
    proc = subprocess.run(
        [promtool(), "test", "rules", str(test_file)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    assert "PinpointeHighBounceRate" in proc.stdout + proc.stderr


def test_recording_rules_follow_level_metric_operations() -> None:
    for name in records():
        if name == THRESHOLD_SERIES:
            continue
        level, metric, operations = name.split(":")
        assert re.fullmatch(r"[a-z_]+", level), name
        assert metric.startswith("pinpointe_"), name
        assert re.fullmatch(r"(ratio|delta24h|ratio_delta24h)", operations), name


def test_alerts_are_named_labelled_and_explained() -> None:
    names = [rule["alert"] for rule in alerts()]
    assert len(names) == len(set(names)), "duplicate alert names"
    for rule in alerts():
        name = rule["alert"]
        assert re.fullmatch(r"Pinpointe(?:[A-Z][a-z0-9]*)+", name), name
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        annotations = rule["annotations"]
        assert set(annotations) >= {"summary", "description"}, name
        text = annotations["summary"] + annotations["description"]
        if name != "PinpointeExporterDown":
            assert "$labels.account" in text, f"{name} does not name the account"
        if "autoresponder_" in rule["expr"]:
            assert "$labels.autoresponder_name" in text, f"{name} does not name the autoresponder"
            assert "$labels.autoresponder_id" in text, name
        # says what to do: at least one imperative sentence in the description
        assert re.search(
            r"\b(check|find|review|pause|update|restart|follow|fix|remove)\b",
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
                assert set(alert["exp_annotations"]) == {"summary", "description"}, case
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
    assert any("ratio" in expr and "Draft" in expr for expr in zero_checked)
    assert any("beta" in expr for expr in zero_checked)


def test_rules_only_use_metrics_the_exporter_exports() -> None:
    exported = {family.name for family in ALL_FAMILIES}
    recorded = set(records())
    for rule in rules():
        for name in re.findall(r"(?<![:\w])pinpointe_[a-z_]+(?![:\w])", rule["expr"]):
            assert name in exported, f"{name} is not exported by exporter/metrics.py"
        for name in re.findall(r"(?<![:\w])[a-z_]+:[a-z_]+(?::[a-z0-9_]+)?(?![:\w])", rule["expr"]):
            assert name in recorded, f"{name} is not recorded by any rule"
