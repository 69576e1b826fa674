"""grafana/: the committed dashboards are the generated ones, follow the house rules
(variables, no hard-coded data source, a query in every panel) and contain only
valid PromQL over metrics that exist. tests/test_e2e_alerting.py proves each query
returns data against a real Prometheus."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from exporter.metrics import ALL_FAMILIES
from tests.conftest import SYSTEM_DEPS, require_tool

ROOT = Path(__file__).resolve().parent.parent
GRAFANA = ROOT / "grafana"
DASHBOARD_FILES = sorted((GRAFANA / "dashboards").glob("*.json"))
SAMPLE_VALUES = {
    "account": "acme",
    "autoresponder": "Welcome series",
    "job": "pinpointe",
    "__range": "1h",
    "__rate_interval": "1m",
    "__interval": "30s",
}


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("grafana_generate", GRAFANA / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


GEN = load_generator()


def dashboards() -> list[dict[str, Any]]:
    return [json.loads(path.read_text(encoding="utf-8")) for path in DASHBOARD_FILES]


def walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def promql(query: str) -> str:
    """A variable's label_values(<selector>, <label>) is Grafana syntax: check the selector."""
    match = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query.strip(), re.DOTALL)
    return match.group(1) if match else query


def test_committed_dashboards_are_the_generated_ones() -> None:
    assert {p.name for p in DASHBOARD_FILES} == set(GEN.DASHBOARDS)
    for path in DASHBOARD_FILES:
        assert path.read_text(encoding="utf-8") == GEN.render(GEN.DASHBOARDS[path.name]), (
            f"{path.name} differs from grafana/generate.py: run python grafana/generate.py"
        )


def test_check_mode_detects_a_stale_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for path in DASHBOARD_FILES:
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"))
    monkeypatch.setattr(GEN, "OUT_DIR", tmp_path)
    assert GEN.main(["--check"]) == 0
    (tmp_path / DASHBOARD_FILES[0].name).write_text("{}\n")
    assert GEN.main(["--check"]) == 1


def test_the_two_dashboards_of_issue_3() -> None:
    titles = {d["title"]: d for d in dashboards()}
    assert set(titles) == {"Pinpointe autoresponders", "Pinpointe exporter"}
    uids = [d["uid"] for d in dashboards()]
    assert len(set(uids)) == len(uids)
    for dash in dashboards():
        assert 36 <= dash["schemaVersion"] <= 41, "Grafana 10/11 JSON model"
        assert dash.get("id") is None, "a fixed id clashes on import; the uid identifies it"
        assert re.fullmatch(r"[a-z0-9-]{1,40}", dash["uid"])


def test_variables() -> None:
    for dash in dashboards():
        variables = {v["name"]: v for v in dash["templating"]["list"]}
        datasource = variables["datasource"]
        assert (datasource["type"], datasource["query"]) == ("datasource", "prometheus")
        assert variables["account"]["type"] == "query"
        assert "account" in variables["account"]["query"]["query"]
        for variable in variables.values():
            if variable["type"] == "query":
                assert variable["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    autoresponders = next(d for d in dashboards() if d["uid"] == "pinpointe-autoresponders")
    names = {v["name"] for v in autoresponders["templating"]["list"]}
    assert {"datasource", "account", "autoresponder"} <= names


def test_no_hard_coded_datasource() -> None:
    for dash in dashboards():
        for node in walk(dash):
            if "datasource" not in node:
                continue
            ref = node["datasource"]
            assert isinstance(ref, dict), f"datasource by name: {ref!r}"
            if ref.get("type") == "grafana":  # the built-in annotations source
                continue
            assert ref == {"type": "prometheus", "uid": "${datasource}"}, ref


def test_every_panel_has_queries_and_a_place() -> None:
    for dash in dashboards():
        panels = GEN.iter_panels(dash)
        ids = [p["id"] for p in panels]
        assert len(ids) == len(set(ids)), f"{dash['title']}: duplicate panel ids"
        for panel in panels:
            pos = panel["gridPos"]
            assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
            if panel["type"] == "row":
                assert panel["collapsed"] or panel["panels"] == []
                continue
            assert panel["title"] and panel["description"], panel
            targets = panel["targets"]
            assert targets, f"{panel['title']}: no queries"
            assert all(t["expr"].strip() for t in targets), panel["title"]
            ref_ids = [t["refId"] for t in targets]
            assert len(ref_ids) == len(set(ref_ids)), panel["title"]


def test_merged_tables_join_on_labels_only() -> None:
    """A table merging several queries joins rows on their label columns: a query
    returning __name__ (a bare selector) would never join the others."""
    for dash in dashboards():
        for panel in GEN.iter_panels(dash):
            if panel["type"] != "table" or len(panel["targets"]) < 2:
                continue
            for t in panel["targets"]:
                expr = t["expr"].strip()
                assert re.match(r"(sum|max|min|count|avg) by \(", expr) or "\n/\n" in expr, (
                    f"{panel['title']} {t['refId']}: aggregate or divide to drop __name__"
                )
                assert t["format"] == "table" and t["instant"], (panel["title"], t["refId"])


def test_expanded_panels_do_not_overlap() -> None:
    for dash in dashboards():
        cells: dict[tuple[int, int], str] = {}
        groups = [dash["panels"]] + [p["panels"] for p in dash["panels"] if p.get("panels")]
        for group in groups:
            cells.clear()
            for panel in group:
                pos = panel["gridPos"]
                for x in range(pos["x"], pos["x"] + pos["w"]):
                    for y in range(pos["y"], pos["y"] + pos["h"]):
                        assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                        cells[(x, y)] = panel["title"]


def test_every_query_is_filtered_by_the_variables() -> None:
    for dash in dashboards():
        for where, query in GEN.queries(dash):
            if where.startswith("variable") or 'job=~"$job"' in query:
                continue
            assert 'account=~"$account"' in query, f"{dash['title']} {where}: {query}"
            if dash["uid"] == "pinpointe-autoresponders":
                assert 'autoresponder_name=~"$autoresponder"' in query or "account:" in query, (
                    f"{where}: {query}"
                )


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query (variables substituted) as a recording rule."""
    tool = require_tool("promtool", SYSTEM_DEPS)
    rules = [
        {"record": f"dashboard:query_{i}:check", "expr": GEN.substitute(promql(q), SAMPLE_VALUES)}
        for i, (_, q) in enumerate(q for d in dashboards() for q in GEN.queries(d))
    ]
    assert all("$" not in rule["expr"] for rule in rules), "unsubstituted variable"
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    proc = subprocess.run([tool, "check", "rules", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_queries_use_only_exported_or_recorded_metrics() -> None:
    exported = {family.name for family in ALL_FAMILIES}
    recorded = {
        rule["record"]
        for name in ("rules.yml", "alerts.yml")
        for group in yaml.safe_load((ROOT / "prometheus" / name).read_text())["groups"]
        for rule in group["rules"]
        if "record" in rule
    }
    used: set[str] = set()
    for dash in dashboards():
        for where, query in GEN.queries(dash):
            for name in re.findall(r"(?<![:\w\"])pinpointe_[a-z_]+(?![:\w])", query):
                assert name in exported, f"{where}: {name} is not exported"
                used.add(name)
            for name in re.findall(r"(?<![:\w])[a-z_]+:[a-z_]+:[a-z0-9_]+(?![:\w])", query):
                assert name in recorded, f"{where}: {name} is not a recording rule"
                used.add(name)
    # the exporter dashboard covers every health metric of the contract
    for name in (
        "pinpointe_up",
        "pinpointe_last_success_timestamp_seconds",
        "pinpointe_poll_duration_seconds",
        "pinpointe_poll_errors_total",
        "pinpointe_api_requests_total",
        "pinpointe_records",
        "pinpointe_unmapped_field_info",
    ):
        assert name in used, f"no panel shows {name}"


def test_provisioning_files() -> None:
    (ds_file,) = sorted((GRAFANA / "provisioning" / "datasources").glob("*.yml"))
    datasources = yaml.safe_load(ds_file.read_text())
    assert datasources["apiVersion"] == 1
    (ds,) = datasources["datasources"]
    assert (ds["type"], ds["access"]) == ("prometheus", "proxy")
    assert ds["url"].startswith("http")
    (provider_file,) = sorted((GRAFANA / "provisioning" / "dashboards").glob("*.yml"))
    providers = yaml.safe_load(provider_file.read_text())
    assert providers["apiVersion"] == 1
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    # the comment tells where to mount grafana/dashboards: the same path
    assert provider["options"]["path"] in provider_file.read_text().split("apiVersion")[0]
