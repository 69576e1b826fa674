"""grafana/dashboards/*.json type-checked against Grafana's own published schema: the
@grafana/schema npm package's dashboard model and panel plugin types, with TypeScript's tsc
(tests/dashboard_schema/: the pinned packages, the CheckedDashboard type and its allow-list).
No Grafana server runs here; this is the closest check of what Grafana accepts. Broken copies
of the dashboards prove each kind of error is caught."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, require_tool
from tests.dashboard_schema.install import installed_packages
from tests.dashboard_schema.typecheck import Diagnostic, Key, json_path, typecheck

DASHBOARDS: dict[str, Any] = {
    path.name: json.loads(path.read_text(encoding="utf-8"))
    for path in sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
}
AUTORESPONDERS = "pinpointe-autoresponders.json"
NPM = "apt-get install npm (or scripts/install-system-deps)"


def panels(dashboard: Any) -> Iterator[tuple[tuple[Key, ...], Any]]:
    """Every panel with its keys, those of collapsed rows included."""
    for index, panel in enumerate(dashboard["panels"]):
        yield ("panels", index), panel
        for inner, nested in enumerate(panel.get("panels", [])):
            yield ("panels", index, "panels", inner), nested


def describe(found: Diagnostic, dashboard: Any) -> str:
    match = re.match(r"panels\[(\d+)\](?:\.panels\[(\d+)\])?", found.path)
    where = ""
    if match is not None:
        panel = dashboard["panels"][int(match[1])]
        if match[2] is not None:
            panel = panel["panels"][int(match[2])]
        where = f'panel "{panel.get("title")}", '
    return f"{found.dashboard}: {where}{found.path or '(root)'}: {found.code} {found.message}"


@pytest.fixture(scope="module")
def packages() -> Path:
    """Cold (npm ci into .cache/) on the first run, warm afterwards."""
    return installed_packages(require_tool("npm", NPM, skip_outside_ci=True))


@pytest.fixture(scope="module")
def diagnostics(packages: Path) -> list[Diagnostic]:
    """One tsc run over every dashboard as committed."""
    return typecheck(DASHBOARDS, packages)


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_matches_grafanas_schema(name: str, diagnostics: list[Diagnostic]) -> None:
    found = [d for d in diagnostics if d.dashboard == name]
    assert not found, "\n".join(describe(d, DASHBOARDS[name]) for d in found)


# ---- The check can fail: one broken copy of a dashboard per kind of error. ----


@dataclass(frozen=True)
class Breakage:
    """One field changed in a copy of a clean dashboard: in its first panel of type ``panel``
    (inside a collapsed row when ``in_row``), or in the dashboard when ``panel`` is None.
    tsc must report it at that field (at its parent for a removal) with a message containing
    every one of ``expect``."""

    panel: str | None
    field: tuple[Key, ...]
    expect: tuple[str, ...]
    value: Any = None
    rename: str | None = None
    remove: bool = False
    in_row: bool = False

    def panel_keys(self, dashboard: Any) -> tuple[Key, ...]:
        if self.panel is None:
            return ()
        for keys, panel in panels(dashboard):
            in_row = len(keys) > 2
            if panel["type"] == self.panel and in_row == self.in_row:
                return keys
        raise LookupError(f"no {self.panel} panel{' in a row' if self.in_row else ''}")

    def apply(self, dashboard: Any) -> tuple[Any, str]:
        """The broken copy and the path tsc must report."""
        broken = copy.deepcopy(dashboard)
        keys = (*self.panel_keys(dashboard), *self.field)
        parent = broken
        for key in keys[:-1]:
            parent = parent[key]
        last = keys[-1]
        if self.remove:
            del parent[last]
            return broken, json_path(keys[:-1])
        if self.rename is not None:
            parent[self.rename] = parent.pop(last)
            return broken, json_path((*keys[:-1], self.rename))
        parent[last] = self.value
        return broken, json_path(keys)


BREAKAGES = {
    "panel type Grafana does not have": Breakage(
        "stat",
        ("type",),
        value="singlestat",
        expect=('"singlestat"', "is not assignable", '"timeseries"'),
    ),
    "string where a number is wanted": Breakage(
        "stat",
        ("gridPos", "h"),
        value="8",
        expect=("Type 'string' is not assignable to type 'number'",),
    ),
    "misspelled dashboard key": Breakage(
        None, ("timezone",), rename="timeZone", expect=("timeZone", "does not exist")
    ),
    "option of the wrong type": Breakage(
        "timeseries",
        ("options", "legend", "showLegend"),
        value="yes",
        expect=("'string'", "'boolean | undefined'"),
    ),
    "misspelled option key": Breakage(
        "stat",
        ("options", "reduceOptions", "calcs"),
        rename="calc",
        expect=("calc", "does not exist"),
    ),
    "custom field config value outside its enum": Breakage(
        "timeseries",
        ("fieldConfig", "defaults", "custom", "drawStyle"),
        value="lines",
        expect=('"lines"', '"line"', '"bars"'),
    ),
    "misspelled custom field config key": Breakage(
        "timeseries",
        ("fieldConfig", "defaults", "custom", "lineWidth"),
        rename="linewidth",
        expect=("linewidth", "does not exist"),
    ),
    "option of the wrong type in a collapsed row": Breakage(
        "table",
        ("options", "showHeader"),
        value="yes",
        in_row=True,
        expect=("'string'", "'boolean | undefined'"),
    ),
    "misspelled Prometheus query field": Breakage(
        "timeseries",
        ("targets", 0, "legendFormat"),
        rename="legendFromat",
        expect=("legendFromat", "does not exist"),
    ),
    "Prometheus query without its PromQL": Breakage(
        "timeseries", ("targets", 0, "expr"), remove=True, expect=("Property 'expr' is missing",)
    ),
    "override property that is no field config property": Breakage(
        "table",
        ("fieldConfig", "overrides", 0, "properties", 0, "id"),
        value="custom.cellOption",
        expect=('"custom.cellOption"', "is not assignable", '"custom.cellOptions"'),
    ),
}


@pytest.fixture(scope="module")
def broken_diagnostics(packages: Path) -> tuple[list[Diagnostic], dict[str, Any]]:
    """One tsc run over every broken copy of the (clean) dashboard."""
    clean = DASHBOARDS[AUTORESPONDERS]
    copies = {name: breakage.apply(clean)[0] for name, breakage in BREAKAGES.items()}
    return typecheck(copies, packages), copies


@pytest.mark.parametrize("name", list(BREAKAGES))
def test_the_check_catches(
    name: str, broken_diagnostics: tuple[list[Diagnostic], dict[str, Any]]
) -> None:
    diagnostics, copies = broken_diagnostics
    breakage = BREAKAGES[name]
    clean = DASHBOARDS[AUTORESPONDERS]
    _, reported_at = breakage.apply(clean)
    found = [d for d in diagnostics if d.dashboard == name]
    report = "\n".join(describe(d, copies[name]) for d in found)
    at = [d for d in found if d.path == reported_at]
    assert len(at) == 1, f"nothing reported at {reported_at}:\n{report}"
    for fragment in breakage.expect:
        assert fragment in at[0].message, report
    # anything else reported (a wrong panel type misreads the panel's options) is in that panel
    scope = json_path(breakage.panel_keys(clean)) or reported_at
    assert all(d.path.startswith(scope) for d in found), report
