"""Reading the rendered Grafana dashboards back: their panels, their PromQL, and the
PromQL with Grafana's variables substituted (tests/integration/test_dashboards.py and the
end-to-end test, which runs every query against a real Prometheus)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

DASHBOARDS = Path(__file__).resolve().parents[2] / "grafana" / "dashboards"

Json = dict[str, Any]


def dashboards() -> list[Json]:
    return [
        json.loads(path.read_text(encoding="utf-8")) for path in sorted(DASHBOARDS.glob("*.json"))
    ]


def iter_panels(dash: Json) -> list[Json]:
    """Every panel, including those stored inside collapsed rows."""
    out: list[Json] = []
    for panel in dash["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def queries(dash: Json) -> list[tuple[str, str]]:
    """(where, query) for every panel target and every query variable of a dashboard."""
    found: list[tuple[str, str]] = []
    for variable in dash["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            text = query["query"] if isinstance(query, dict) else query
            found.append((f"variable {variable['name']}", text))
    for panel in iter_panels(dash):
        for t in panel.get("targets", []):
            found.append((f"panel {panel['title']!r} target {t['refId']}", t["expr"]))
    return found


def promql(query: str) -> str:
    """A variable's label_values(<selector>, <label>) and query_result(<expr>) are Grafana
    syntax: the PromQL inside."""
    match = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query.strip(), re.DOTALL)
    if match:
        return match.group(1)
    match = re.fullmatch(r"query_result\((.*)\)", query.strip(), re.DOTALL)
    return match.group(1) if match else query


def substitute(expr: str, values: dict[str, str]) -> str:
    """Replace $name and ${name} (dashboard variables and Grafana's $__ built-ins)."""
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace("${" + name + "}", values[name]).replace("$" + name, values[name])
    return expr
