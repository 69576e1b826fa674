"""grafana/: the dashboards rendered from the mixin follow the house rules (variables,
no hard-coded data source, a query in every panel) and contain only valid PromQL over
metrics that exist. tests/integration/test_mixin.py proves they are the rendering of mixin/;
tests/test_e2e_alerting.py proves each query returns data against a real Prometheus."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from exporter.collector.sharding import ShardCollector
from exporter.exposition import ALL_FAMILIES
from tests.conftest import ROOT, SYSTEM_DEPS, require_tool
from tests.integration.dashboard_queries import dashboards, iter_panels, promql, queries, substitute

GRAFANA = ROOT / "grafana"
RUNBOOKS = "https://github.com/pinpointe-exporter/pinpointe-exporter/blob/main/docs/runbooks.md"
SAMPLE_VALUES = {
    "account": "acme",
    "autoresponder": "7",
    "job": "pinpointe",
    "__range": "1h",
    "__rate_interval": "1m",
    "__interval": "30s",
}


def walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


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
        panels = iter_panels(dash)
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
        for panel in iter_panels(dash):
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
        for where, query in queries(dash):
            if where.startswith("variable") or 'job=~"$job"' in query:
                continue
            assert 'account=~"$account"' in query, f"{dash['title']} {where}: {query}"
            # account-level panels of the first screen: alerts, freshness, account rules
            account_level = ("account:", "ALERTS{", "pinpointe_last_success_timestamp_seconds")
            if dash["uid"] == "pinpointe-autoresponders" and not any(
                word in query for word in account_level
            ):
                assert 'autoresponder_id=~"$autoresponder"' in query, f"{where}: {query}"


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query (variables substituted) as a recording rule."""
    tool = require_tool("promtool", SYSTEM_DEPS)
    rules = [
        {"record": f"dashboard:query_{i}:check", "expr": substitute(promql(q), SAMPLE_VALUES)}
        for i, (_, q) in enumerate(q for d in dashboards() for q in queries(d))
    ]
    assert all("$" not in rule["expr"] for rule in rules), "unsubstituted variable"
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    proc = subprocess.run([tool, "check", "rules", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_queries_use_only_exported_or_recorded_metrics() -> None:
    shards = {family.name for family in ShardCollector(0, 1).collect()}
    exported = {family.name for family in ALL_FAMILIES} | shards
    recorded = {
        rule["record"]
        for name in ("rules.yml", "alerts.yml")
        for group in yaml.safe_load((ROOT / "prometheus" / name).read_text())["groups"]
        for rule in group["rules"]
        if "record" in rule
    }
    used: set[str] = set()
    for dash in dashboards():
        for where, query in queries(dash):
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


def by_uid(uid: str) -> dict[str, Any]:
    return next(d for d in dashboards() if d["uid"] == uid)


def test_the_first_screen_says_what_is_wrong() -> None:
    """Issue 12: firing alerts, freshness per account, the account's complaint rate,
    top offenders with a volume floor and coloured cells, daily volume per autoresponder,
    all above the first fold (y < 30)."""
    dash = by_uid("pinpointe-autoresponders")
    first = [p for p in dash["panels"] if p["gridPos"]["y"] < 30 and p["type"] != "row"]
    kinds = {p["title"]: p for p in first}
    firing = kinds["Firing alerts"]
    assert (
        "ALERTS{" in firing["targets"][0]["expr"]
        and 'alertstate="firing"' in (firing["targets"][0]["expr"])
    )
    assert kinds["Data freshness"]["fieldConfig"]["defaults"]["thresholds"]["steps"][-1] == {
        "color": "red",
        "value": 3.0,
    }
    offenders = kinds["Top offenders, last 24 h"]
    assert all(">= 200" in t["expr"] for t in offenders["targets"]), "volume floor"
    coloured = [
        o
        for o in offenders["fieldConfig"]["overrides"]
        if {"id": "custom.cellOptions", "value": {"type": "color-background"}} in o["properties"]
    ]
    assert len(coloured) == 4
    assert kinds["Recipients of the last 24 h, per autoresponder"]["type"] == "state-timeline"
    complaints = kinds["Account complaint rate, last 24 h"]
    defaults = complaints["fieldConfig"]["defaults"]
    assert defaults["custom"]["thresholdsStyle"] == {"mode": "dashed"}
    assert [s["value"] for s in defaults["thresholds"]["steps"]] == [None, 0.001, 0.003]


def alert_threshold_values() -> dict[str, float]:
    alerts = yaml.safe_load((ROOT / "prometheus" / "alerts.yml").read_text())
    return {
        rule["labels"]["threshold"]: float(rule["expr"][len("vector(") : -1])
        for rule in alerts["groups"][0]["rules"]
    }


def test_rates_are_coloured_at_the_alert_levels() -> None:
    levels = alert_threshold_values()
    expected = {
        "bounces_per_recipients": [levels["bounce_rate"]],
        "hard_bounces_per_recipients": [levels["hard_bounce_rate"]],
        "unsubscribes_per_recipients": [levels["unsubscribe_rate"]],
        "complaints_per_recipients": [
            levels["account_complaint_rate_warning"],
            levels["account_complaint_rate_critical"],
        ],
    }
    seen = set()
    for dash in dashboards():
        for panel in iter_panels(dash):
            exprs = " ".join(t["expr"] for t in panel.get("targets", []))
            for stem, values in expected.items():
                if panel["type"] not in ("timeseries", "stat") or len(panel["targets"]) != 1:
                    continue
                if f"pinpointe_autoresponder_{stem}:" not in exprs or "ratio_delta24h" not in exprs:
                    continue
                defaults = panel["fieldConfig"]["defaults"]
                steps = [s["value"] for s in defaults["thresholds"]["steps"][1:]]
                assert steps == values, (panel["title"], steps)
                assert defaults["decimals"] == (2 if stem.startswith("complaints") else 1)
                seen.add(stem)
    assert seen == set(expected)


def test_complaint_rates_show_two_decimals() -> None:
    for dash in dashboards():
        for panel in iter_panels(dash):
            if "omplaint" not in panel["title"] or panel["type"] == "row":
                continue
            if panel["fieldConfig"]["defaults"].get("unit") == "percentunit":
                assert panel["fieldConfig"]["defaults"]["decimals"] == 2, panel["title"]


def test_runbook_links_and_alert_annotations() -> None:
    runbooks = (ROOT / "docs" / "runbooks.md").read_text(encoding="utf-8").lower()
    for dash in dashboards():
        links = [link["url"] for link in dash["links"]]
        assert RUNBOOKS in links, dash["title"]
        annotations = dash["annotations"]["list"]
        alerts = [a for a in annotations if "ALERTS{" in a.get("expr", "")]
        assert alerts and alerts[0]["enable"], dash["title"]
        assert alerts[0]["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    panel_links = [
        link["url"]
        for dash in dashboards()
        for panel in iter_panels(dash)
        for link in panel.get("links", [])
    ]
    assert len(panel_links) >= 8
    for url in panel_links:
        page, _, anchor = url.partition("#")
        assert page == RUNBOOKS, url
        assert not anchor or f"\n## {anchor}\n" in runbooks, url


def test_autoresponder_variable_selects_by_id_and_shows_the_name() -> None:
    dash = by_uid("pinpointe-autoresponders")
    variable = next(v for v in dash["templating"]["list"] if v["name"] == "autoresponder")
    query = variable["query"]["query"]
    assert query.startswith("query_result(") and "autoresponder_id" in query
    regex = variable["regex"].strip("/").replace("(?<", "(?P<")
    line = '{autoresponder_id="12", autoresponder_name="Welcome \\"A\\""} 1 1700000000000'
    match = re.search(regex, line)
    assert match and match.group("value") == "12", regex
    assert match.group("text") == 'Welcome \\"A\\"'


def test_alert_annotations_include_the_alerts_without_an_account(tmp_path: Path) -> None:
    """The annotation query, with one account selected, shows that account's alerts and
    the exporter-wide ones that have no account label (PinpointeExporterDown, ...), not
    another account's. promtool evaluates it on ALERTS series."""
    tool = require_tool("promtool", SYSTEM_DEPS)
    firing = 'ALERTS{{alertstate="firing",alertname="{}",severity="{}"{}}}'
    series = {
        "down": firing.format(
            "PinpointeExporterDown", "critical", ',job="pinpointe",instance="e:9863"'
        ),
        "missing": firing.format("PinpointeExporterTargetMissing", "critical", ""),
        "acme": firing.format("PinpointeHighBounceRate", "warning", ',account="acme"'),
        "beta": firing.format("PinpointeHighBounceRate", "warning", ',account="beta"'),
    }
    for dash in dashboards():
        annotation = next(a for a in dash["annotations"]["list"] if "ALERTS{" in a.get("expr", ""))
        for selected in ("acme", "(acme|gamma)", ".+"):
            expr = substitute(annotation["expr"], {"account": selected})
            shown = ("down", "missing", "acme") + (("beta",) if selected == ".+" else ())
            test = {
                "tests": [
                    {
                        "interval": "1m",
                        "input_series": [{"series": s, "values": "1x5"} for s in series.values()],
                        "promql_expr_test": [
                            {
                                "expr": expr,
                                "eval_time": "2m",
                                "exp_samples": [
                                    {"labels": series[key], "value": 1} for key in shown
                                ],
                            }
                        ],
                    }
                ]
            }
            path = tmp_path / "annotation_test.yml"
            path.write_text(yaml.safe_dump(test))
            result = subprocess.run(
                [tool, "test", "rules", str(path)], capture_output=True, text=True, check=False
            )
            assert result.returncode == 0, f"{dash['title']} {selected}: {result.stdout}"


def test_the_shards_panel_says_not_sharded_without_shards(tmp_path: Path) -> None:
    """Issue 21: an unsharded exporter serves no shard metrics; the panel's two queries
    still return a value (0, shown as "not sharded") for every exporter job, and the
    real figures where the metrics exist. promtool evaluates both on both kinds."""
    tool = require_tool("promtool", SYSTEM_DEPS)
    panel = next(
        p for p in iter_panels(by_uid("pinpointe-exporter")) if p["title"] == "Shards reporting"
    )
    (mapping,) = panel["fieldConfig"]["defaults"]["mappings"]
    assert mapping["options"]["0"]["text"] == "not sharded"
    build = 'pinpointe_exporter_build_info{{job="pinpointe",instance="{}:9863",version="1"}}'
    unsharded = [{"series": build.format("a"), "values": "1x5"}]
    # s0 and s1 both say index 0: one distinct index of three
    sharded = [{"series": build.format(pod), "values": "1x5"} for pod in ("s0", "s1")] + [
        {"series": f'{name}{{job="pinpointe",instance="{pod}:9863"}}', "values": f"{value}x5"}
        for pod in ("s0", "s1")
        for name, value in (
            ("pinpointe_exporter_shard_index", 0),
            ("pinpointe_exporter_shard_count", 3),
        )
    ]
    tests = [
        {
            "interval": "1m",
            "input_series": series,
            "promql_expr_test": [
                {
                    "expr": substitute(target["expr"], {"job": ".+"}),
                    "eval_time": "2m",
                    "exp_samples": [
                        {"labels": '{job="pinpointe"}', "value": expected[target["refId"]]}
                    ],
                }
                for target in panel["targets"]
            ],
        }
        for series, expected in ((unsharded, {"A": 0, "B": 0}), (sharded, {"A": 1, "B": 3}))
    ]
    path = tmp_path / "shards_test.yml"
    path.write_text(yaml.safe_dump({"tests": tests}))
    result = subprocess.run([tool, "test", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
