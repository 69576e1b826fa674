#!/usr/bin/env python3
"""Generate the Grafana dashboards of pinpointe-exporter (Grafana 10/11 JSON model).

    python grafana/generate.py           # rewrite grafana/dashboards/*.json
    python grafana/generate.py --check   # exit 1 if a committed file differs

The dashboards are plain data built here with the standard library only, so that
anyone can regenerate them; tests/test_dashboards.py fails when the committed
JSON and this script disagree. Edit this file, not the JSON.

Conventions kept by every panel:
  * datasource {"type": "prometheus", "uid": "${datasource}"}: no hard-coded UID;
  * every query selects account=~"$account" (and autoresponder_id=~"$autoresponder"
    on the autoresponders dashboard: the variable's values are ids, its texts names,
    so duplicate names do not merge and a rename does not split), so the variables
    filter everything;
  * ratios are 0-1 (unit percentunit) and come from prometheus/rules.yml where a
    recording rule exists; a rate that can be bad is coloured at the levels of its
    alert, read from prometheus/alerts.yml; complaint rates show two decimals.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

OUT_DIR = Path(__file__).resolve().parent / "dashboards"
ALERTS_FILE = Path(__file__).resolve().parent.parent / "prometheus" / "alerts.yml"
RUNBOOKS = "https://github.com/pinpointe-exporter/pinpointe-exporter/blob/main/docs/runbooks.md#"
SCHEMA_VERSION = 39  # Grafana 10.4 / 11.x; older 10.x migrate it on load
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

ACC = 'account=~"$account"'
SEL = 'account=~"$account", autoresponder_id=~"$autoresponder"'
AR_LABELS = "account, autoresponder_id, autoresponder_name"
SEND_LABELS = "account, autoresponder_id, autoresponder_name, send_id"

Json = dict[str, Any]


def alert_thresholds() -> dict[str, float]:
    """The `pinpointe:alert_threshold` constants of prometheus/alerts.yml (standard
    library only: the two-line pattern of that file's first group)."""
    text = ALERTS_FILE.read_text(encoding="utf-8")
    pattern = r"labels: \{threshold: (\w+)\}\n\s+expr: vector\(([\d.]+)\)"
    return {name: float(value) for name, value in re.findall(pattern, text)}


THRESHOLDS = alert_thresholds()
# the smallest recipients floor of the per-autoresponder rate alerts
VOLUME_FLOOR = min(v for k, v in THRESHOLDS.items() if k.endswith("_min_recipients_24h"))


def steps(*levels: tuple[str, float]) -> Json:
    """Absolute threshold steps: green below the first level."""
    return {
        "mode": "absolute",
        "steps": [{"color": "green", "value": None}]
        + [{"color": color, "value": value} for color, value in levels],
    }


# ratio stem -> (thresholds at the alert levels, decimals)
RATE_STYLE: dict[str, tuple[Json, int]] = {
    "bounces_per_recipients": (steps(("red", THRESHOLDS["bounce_rate"])), 1),
    "hard_bounces_per_recipients": (steps(("red", THRESHOLDS["hard_bounce_rate"])), 1),
    "unsubscribes_per_recipients": (steps(("red", THRESHOLDS["unsubscribe_rate"])), 1),
    "complaints_per_recipients": (
        steps(
            ("orange", THRESHOLDS["account_complaint_rate_warning"]),
            ("red", THRESHOLDS["account_complaint_rate_critical"]),
        ),
        2,
    ),
}
STALE = steps(("orange", 1.5), ("red", THRESHOLDS["stale_poll_intervals"]))


def styled(stem: str) -> Json:
    """fieldConfig defaults for a ratio: its alert's colours and decimals."""
    thresholds, decimals = RATE_STYLE.get(stem, (steps(), 1))
    return {"thresholds": thresholds, "decimals": decimals, "color": {"mode": "thresholds"}}


# ---- building blocks ---------------------------------------------------------------


def target(
    expr: str,
    legend: str = "",
    ref: str = "A",
    instant: bool = False,
    fmt: str = "time_series",
) -> Json:
    return {
        "datasource": DATASOURCE,
        "editorMode": "code",
        "expr": expr,
        "format": fmt,
        "instant": instant,
        "legendFormat": legend or "__auto",
        "range": not instant,
        "refId": ref,
    }


def _field_config(unit: str, extra: Json | None = None) -> Json:
    defaults: Json = {
        "color": {"mode": "palette-classic"},
        "unit": unit,
        "thresholds": {"mode": "absolute", "steps": [{"color": "green", "value": None}]},
    }
    if unit == "percentunit":
        defaults["min"] = 0
        defaults["decimals"] = 1
    defaults.update(extra or {})
    return {"defaults": defaults, "overrides": []}


def stat(
    title: str,
    description: str,
    targets: list[Json],
    unit: str,
    w: int,
    h: int = 4,
    text_mode: str = "auto",
    mappings: list[Json] | None = None,
    color_mode: str = "value",
    field: Json | None = None,
    links: list[Json] | None = None,
) -> Json:
    extra: Json = {"color": {"mode": "thresholds"}, **(field or {})}
    if mappings:
        extra["mappings"] = mappings
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": targets,
        "fieldConfig": _field_config(unit, extra),
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": color_mode,
            "graphMode": "none",
            "justifyMode": "auto",
            "orientation": "auto",
            "textMode": text_mode,
            "wideLayout": True,
        },
        "links": links or [],
        "_size": (w, h),
    }


def timeseries(
    title: str,
    description: str,
    targets: list[Json],
    unit: str,
    w: int = 12,
    h: int = 8,
    field: Json | None = None,
    links: list[Json] | None = None,
) -> Json:
    custom: Json = {
        "drawStyle": "line",
        "lineWidth": 1,
        "fillOpacity": 10,
        "showPoints": "never",
        "spanNulls": True,
    }
    extra: Json = dict(field or {})
    if "thresholds" in extra:
        # the alert levels as dashed lines; the series keep their palette colours
        custom["thresholdsStyle"] = {"mode": "dashed"}
        extra["color"] = {"mode": "palette-classic"}
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": targets,
        "links": links or [],
        "fieldConfig": _field_config(unit, {"custom": custom, **extra}),
        "options": {
            "legend": {
                "displayMode": "table",
                "placement": "bottom",
                "showLegend": True,
                "calcs": ["lastNotNull"],
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "_size": (w, h),
    }


def state_timeline(
    title: str,
    description: str,
    targets: list[Json],
    w: int,
    h: int,
    field: Json | None = None,
    show_value: str = "never",
) -> Json:
    return {
        "type": "state-timeline",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": targets,
        "fieldConfig": _field_config(
            "none", field or {"color": {"mode": "thresholds"}, "mappings": UP_MAPPINGS}
        ),
        "options": {
            "showValue": show_value,
            "mergeValues": True,
            "rowHeight": 0.9,
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": False},
        },
        "_size": (w, h),
    }


def table(
    title: str,
    description: str,
    targets: list[Json],
    columns: dict[str, tuple[str, str]],
    sort_by: str,
    w: int = 24,
    h: int = 10,
    hide: tuple[str, ...] = ("Time",),
    descending: bool = True,
    styles: dict[str, str] | None = None,
    links: list[Json] | None = None,
) -> Json:
    """columns: field name in the merged frame -> (display name, unit);
    styles: field name -> ratio stem whose alert levels colour the cells."""
    overrides = []
    for name, (_, unit) in columns.items():
        properties: list[Json] = [{"id": "unit", "value": unit}]
        stem = (styles or {}).get(name)
        if stem is not None:
            thresholds, decimals = RATE_STYLE[stem]
            properties += [
                {"id": "decimals", "value": decimals},
                {"id": "thresholds", "value": thresholds},
                {"id": "custom.cellOptions", "value": {"type": "color-background"}},
            ]
        elif unit == "percentunit":
            properties.append({"id": "decimals", "value": 1})
        overrides.append({"matcher": {"id": "byName", "options": name}, "properties": properties})
    order = {
        name: i
        for i, name in enumerate(
            [
                "alertname",
                "severity",
                "account",
                "autoresponder_name",
                "autoresponder_id",
                "send_id",
                *columns,
            ]
        )
    }
    return {
        "type": "table",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": targets,
        "links": links or [],
        "fieldConfig": {
            "defaults": {"custom": {"align": "auto", "filterable": True}},
            "overrides": overrides,
        },
        "options": {
            "showHeader": True,
            "cellHeight": "sm",
            "footer": {"show": False, "reducer": ["sum"], "fields": ""},
            "sortBy": [{"displayName": columns[sort_by][0], "desc": descending}],
        },
        "transformations": [
            {"id": "merge", "options": {}},
            {
                "id": "organize",
                "options": {
                    "excludeByName": {name: True for name in hide},
                    "indexByName": order,
                    "renameByName": {
                        "account": "Account",
                        "alertname": "Alert",
                        "severity": "Severity",
                        "autoresponder_name": "Autoresponder",
                        "autoresponder_id": "ID",
                        "send_id": "Send",
                        **{name: display for name, (display, _) in columns.items()},
                    },
                },
            },
        ],
        "_size": (w, h),
    }


def row(
    title: str, collapsed: bool = False, repeat: str | None = None, panels: list[Json] | None = None
) -> Json:
    out: Json = {"type": "row", "title": title, "collapsed": collapsed, "panels": []}
    if repeat:
        out["repeat"] = repeat
    out["_children"] = panels or []
    return out


UP_MAPPINGS = [
    {
        "type": "value",
        "options": {
            "0": {"text": "DOWN", "color": "red", "index": 0},
            "1": {"text": "UP", "color": "green", "index": 1},
        },
    }
]


def layout(items: list[Json]) -> list[Json]:
    """Place panels left to right, wrapping at 24 columns; give every panel an id.

    A row's ``_children`` go after it (expanded row) or inside its ``panels``
    (collapsed row), as Grafana stores them.
    """
    next_id = 1
    x = y = row_height = 0

    def place(panel: Json) -> Json:
        nonlocal next_id, x, y, row_height
        w, h = panel.pop("_size")
        if x + w > 24:
            x, y, row_height = 0, y + row_height, 0
        panel = {"id": next_id, "gridPos": {"h": h, "w": w, "x": x, "y": y}, **panel}
        next_id += 1
        x += w
        row_height = max(row_height, h)
        return panel

    out: list[Json] = []
    for item in items:
        if item["type"] != "row":
            out.append(place(item))
            continue
        children = item.pop("_children")
        y, x, row_height = y + row_height, 0, 0
        row_panel = {"id": next_id, "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, **item}
        next_id += 1
        out.append(row_panel)
        y += 1
        below_row = y
        placed = [place(child) for child in children]
        if item["collapsed"]:
            # a collapsed row takes one grid line; its children (positioned as if
            # it were open) are stored inside it
            row_panel["panels"] = placed
            y, x, row_height = below_row, 0, 0
        else:
            out.extend(placed)
    return out


def datasource_variable() -> Json:
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "includeAll": False,
        "multi": False,
        "options": [],
        "refresh": 1,
        "regex": "",
        "skipUrlSync": False,
    }


def query_variable(name: str, label: str, query: str, regex: str = "") -> Json:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": query,
        "query": {
            "qryType": 1,
            "query": query,
            "refId": "PrometheusVariableQueryEditor-VariableQuery",
        },
        "current": {},
        "hide": 0,
        "includeAll": True,
        "allValue": ".+",
        "multi": True,
        "options": [],
        "refresh": 2,
        "regex": regex,
        "skipUrlSync": False,
        "sort": 1,
    }


def dashboard(
    uid: str,
    title: str,
    description: str,
    variables: list[Json],
    panels: list[Json],
    links: list[Json],
    annotations: list[Json] | None = None,
) -> Json:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["pinpointe", "email"],
        "editable": True,
        "graphTooltip": 1,
        "timezone": "browser",
        "time": {"from": "now-24h", "to": "now"},
        "timepicker": {},
        "refresh": "1m",
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                },
                *(annotations or []),
            ]
        },
        "links": links,
        "templating": {"list": variables},
        "panels": layout(panels),
    }


def alert_annotation() -> Json:
    """The Pinpointe alerts firing, as annotations on every time series: those of the
    selected accounts, and those without an account label (exporter down, target or
    metrics missing, shard missing, reload failed), which concern every account.
    (`$account|`: a multi-value selection is formatted as `(a|b)`, "All" as `.+`; the
    empty alternative matches a missing label.)"""
    return {
        "name": "Pinpointe alerts",
        "datasource": DATASOURCE,
        "enable": True,
        "hide": False,
        "iconColor": "red",
        "expr": 'ALERTS{alertstate="firing", alertname=~"Pinpointe.+", account=~"$account|"}',
        "step": "1m",
        "titleFormat": "{{alertname}}",
        "tagKeys": "severity,account,autoresponder_name",
        "textFormat": "{{alertname}} {{account}} {{autoresponder_name}}",
        "useValueForTime": False,
    }


def runbook(alert: str) -> Json:
    """A panel link to the runbook of an alert (docs/runbooks.md)."""
    return {"title": f"Runbook: {alert}", "url": RUNBOOKS + alert.lower(), "targetBlank": True}


def readme_link(title: str, anchor: str) -> Json:
    return {
        "title": title,
        "type": "link",
        "url": RUNBOOKS + anchor,
        "icon": "doc",
        "includeVars": False,
        "keepTime": False,
        "asDropdown": False,
        "tags": [],
        "targetBlank": True,
        "tooltip": "",
    }


def link_to(title: str, uid: str) -> Json:
    return {
        "title": title,
        "type": "link",
        "url": f"/d/{uid}",
        "icon": "dashboard",
        "includeVars": True,
        "keepTime": True,
        "asDropdown": False,
        "tags": [],
        "targetBlank": False,
        "tooltip": "",
    }


# ---- the autoresponders dashboard ---------------------------------------------------

AR_BY = f"max by ({AR_LABELS})"


def _range_volume(metric: str, extra: str = "") -> str:
    """Growth of a cumulative gauge over the dashboard's range: a two-point difference
    per autoresponder of the instance-free maximum, a fall counted as 0 (see
    prometheus/rules.yml)."""
    sel = f"{metric}{{{SEL}{extra}}}"
    return f"sum(clamp_min({AR_BY} ({sel}) - {AR_BY} ({sel} offset $__range), 0))"


def _range_ratio(numerator: str, numerator_extra: str = "") -> str:
    return (
        f"{_range_volume(numerator, numerator_extra)}\n/\n"
        f"({_range_volume('pinpointe_autoresponder_recipients')} > 0)"
    )


# (display name, ratio stem of prometheus/rules.yml, the alert watching it)
RATE_RULES = (
    ("Open rate", "unique_opens_per_recipients", "PinpointeOpenRateDropped"),
    ("Click rate", "unique_clicks_per_recipients", ""),
    ("Click-to-open rate", "unique_clicks_per_unique_opens", ""),
    ("Bounce rate", "bounces_per_recipients", "PinpointeHighBounceRate"),
    ("Hard-bounce rate", "hard_bounces_per_recipients", "PinpointeHighHardBounceRate"),
    ("Unsubscribe rate", "unsubscribes_per_recipients", "PinpointeHighUnsubscribeRate"),
    ("Complaint rate", "complaints_per_recipients", "PinpointeHighComplaintRate"),
)
AR24 = "account_autoresponder:pinpointe_autoresponder_"
FIRING = 'ALERTS{alertstate="firing", alertname=~"Pinpointe.+"'
SEVERITY_MAPPINGS = [
    {
        "type": "value",
        "options": {
            "critical": {"text": "critical", "color": "red", "index": 0},
            "warning": {"text": "warning", "color": "orange", "index": 1},
        },
    }
]


def _placeholder_row(label: str, text: str) -> str:
    """Appended to a table's query: one row per selected account with ``label`` set to
    ``text``, for the accounts the query has nothing for (so an empty table says so)."""
    return (
        f"or on (account)\nlabel_replace(0 * max by (account) (pinpointe_up{{{ACC}}}), "
        f'"{label}", "{text}", "", "")'
    )


def overview() -> list[Json]:
    """The first screen: is everything OK, and which autoresponder is in trouble?"""
    firing = table(
        "Firing alerts",
        "Pinpointe alerts firing now, from Prometheus' ALERTS series (exporter-wide ones "
        "have no account). '(none firing)' per account when all is well. Runbooks: the "
        "runbooks page (dashboard link above).",
        [
            target(
                f'{FIRING}, account=~"$account"}}\nor\n{FIRING}, account=""}}\n'
                + _placeholder_row("alertname", "(none firing)"),
                ref="A",
                instant=True,
                fmt="table",
            )
        ],
        {"severity": ("Severity", "none")},
        "severity",
        w=10,
        h=8,
        hide=("Time", "Value", "__name__", "alertstate", "instance", "job"),
        descending=False,
        links=[readme_link("Runbooks", "runbooks")],
    )
    firing["fieldConfig"]["overrides"].append(
        {
            "matcher": {"id": "byName", "options": "severity"},
            "properties": [
                {"id": "mappings", "value": SEVERITY_MAPPINGS},
                {"id": "custom.cellOptions", "value": {"type": "color-background"}},
            ],
        }
    )
    freshness = stat(
        "Data freshness",
        "Poll intervals since the last successful poll of each account: orange from 1.5, "
        f"red from {THRESHOLDS['stale_poll_intervals']:g} where PinpointeDataStale fires.",
        [
            target(
                f"(time() - max by (account) (pinpointe_last_success_timestamp_seconds{{{ACC}}}))"
                f"\n/\nmax by (account) (pinpointe_poll_interval_seconds{{{ACC}}})",
                "{{account}}",
                instant=True,
            )
        ],
        "none",
        5,
        8,
        text_mode="value_and_name",
        color_mode="background",
        field={"thresholds": STALE, "decimals": 1},
        links=[runbook("PinpointeDataStale")],
    )
    complaints = timeseries(
        "Account complaint rate, last 24 h",
        "Spam complaints / recipients of each account's last 24 hours, all autoresponders "
        "together, as mailbox providers judge it. Lines at the providers' tiers: "
        f"{THRESHOLDS['account_complaint_rate_warning']:.1%} (PinpointeAccountComplaintRateHigh) "
        f"and {THRESHOLDS['account_complaint_rate_critical']:.1%} "
        "(PinpointeAccountComplaintRateCritical).",
        [
            target(
                f"account:pinpointe_autoresponder_complaints_per_recipients:ratio_delta24h{{{ACC}}}",
                "{{account}}",
            )
        ],
        "percentunit",
        w=9,
        h=8,
        field=styled("complaints_per_recipients"),
        links=[runbook("PinpointeAccountComplaintRateHigh")],
    )
    floor = f"{VOLUME_FLOOR:g}"
    offender_rates = [r for r in RATE_RULES if r[1] in RATE_STYLE]
    offenders = table(
        "Top offenders, last 24 h",
        "Bounce, hard-bounce, unsubscribe and complaint rates of the last 24 hours per "
        f"autoresponder that sent at least {floor} (the alerts' volume floor), sorted by "
        "complaint rate; cells coloured at the alert thresholds.",
        [
            target(
                f"sum by ({AR_LABELS}) ({AR24}recipients:delta24h{{{SEL}}}) >= {floor}",
                ref="A",
                instant=True,
                fmt="table",
            ),
            *[
                target(
                    f"sum by ({AR_LABELS}) ({AR24}{stem}:ratio_delta24h{{{SEL}}})\n"
                    f"and on ({AR_LABELS})\n{AR24}recipients:delta24h{{{SEL}}} >= {floor}",
                    ref=chr(ord("B") + i),
                    instant=True,
                    fmt="table",
                )
                for i, (_, stem, _) in enumerate(offender_rates)
            ],
        ],
        {
            "Value #A": ("Recipients 24 h", "short"),
            **{
                f"Value #{chr(ord('B') + i)}": (name, "percentunit")
                for i, (name, _, _) in enumerate(offender_rates)
            },
        },
        f"Value #{chr(ord('B') + len(offender_rates) - 1)}",
        w=24,
        h=9,
        styles={
            f"Value #{chr(ord('B') + i)}": stem for i, (_, stem, _) in enumerate(offender_rates)
        },
        links=[runbook(alert) for _, _, alert in offender_rates],
    )
    volume = state_timeline(
        "Recipients of the last 24 h, per autoresponder",
        "Emails sent in the last 24 hours by each autoresponder (recording rule "
        "*:recipients:delta24h). Red: none; a stop shows as a red band. Compare with the "
        "same weekday a week earlier before worrying: PinpointeAutoresponderStoppedSending "
        "does.",
        [target(f"{AR24}recipients:delta24h{{{SEL}}}", "{{autoresponder_name}}")],
        24,
        8,
        field={
            "color": {"mode": "thresholds"},
            "thresholds": {
                "mode": "absolute",
                "steps": [{"color": "red", "value": None}, {"color": "green", "value": 1}],
            },
        },
        show_value="auto",
    )
    volume["links"] = [runbook("PinpointeAutoresponderStoppedSending")]
    return [firing, freshness, complaints, offenders, volume]


def autoresponders_dashboard() -> Json:
    headline = [
        stat(
            "Recipients",
            "Emails sent by the selected autoresponders in the selected time "
            "range (growth of Pinpointe's cumulative figures).",
            [target(_range_volume("pinpointe_autoresponder_recipients"), instant=True)],
            "short",
            4,
        ),
        *[
            stat(
                name,
                f"{description} over the selected time range.",
                [target(_range_ratio(f"pinpointe_autoresponder_{metric}"), instant=True)],
                "percentunit",
                4,
                field=styled(stem),
            )
            for name, description, metric, stem in (
                ("Open rate", "Unique opens / recipients, both counted", "unique_opens", ""),
                ("Click rate", "Unique clicks / recipients", "unique_clicks", ""),
                (
                    "Bounce rate",
                    "Bounces of every kind / recipients",
                    "bounces",
                    "bounces_per_recipients",
                ),
                (
                    "Unsubscribe rate",
                    "Unsubscribes / recipients",
                    "unsubscribes",
                    "unsubscribes_per_recipients",
                ),
                (
                    "Complaint rate",
                    "Spam complaints (feedback loops) / recipients",
                    "complaints",
                    "complaints_per_recipients",
                ),
            )
        ],
    ]
    over_time = [
        timeseries(
            "Open and click rate, last 24 h",
            "Unique opens and unique clicks of the last 24 hours / recipients of the last 24 "
            "hours, per autoresponder (recording rules *:ratio_delta24h).",
            [
                target(
                    f"{AR24}unique_opens_per_recipients:ratio_delta24h{{{SEL}}}",
                    "open {{autoresponder_name}} ({{account}})",
                    "A",
                ),
                target(
                    f"{AR24}unique_clicks_per_recipients:ratio_delta24h{{{SEL}}}",
                    "click {{autoresponder_name}} ({{account}})",
                    "B",
                ),
            ],
            "percentunit",
            links=[runbook("PinpointeOpenRateDropped")],
        ),
        *[
            timeseries(
                f"{name}, last 24 h",
                f"{name} of the last 24 hours per autoresponder; the dashed line is where "
                f"{alert} fires (it also needs a volume floor and a minimum of events).",
                [
                    target(
                        f"{AR24}{stem}:ratio_delta24h{{{SEL}}}",
                        "{{autoresponder_name}} ({{account}})",
                    )
                ],
                "percentunit",
                w=6,
                field=styled(stem),
                links=[runbook(alert)],
            )
            for name, stem, alert in RATE_RULES
            if stem in RATE_STYLE
        ],
        timeseries(
            "Lifetime rates per account",
            "Cumulative (all-time) ratios per account, components summed over the account's "
            "autoresponders before dividing (recording rules account:*:ratio).",
            [
                target(
                    f"account:pinpointe_autoresponder_{stem}:ratio{{{ACC}}}",
                    f"{name.lower()} {{{{account}}}}",
                    chr(ord("A") + i),
                )
                for i, (name, stem, _) in enumerate(RATE_RULES)
            ],
            "percentunit",
        ),
        timeseries(
            "Recipients, opens and clicks, last 24 h",
            "Emails sent, opens and clicks of the last 24 hours, summed over the selected "
            "autoresponders (recording rules *:delta24h).",
            [
                target(f"sum({AR24}{m}:delta24h{{{SEL}}})", m, chr(ord("A") + i))
                for i, m in enumerate(("recipients", "opens", "clicks"))
            ],
            "short",
        ),
    ]
    columns = {
        "Value #A": ("Recipients", "short"),
        "Value #B": ("Recipients 24 h", "short"),
        **{
            f"Value #{chr(ord('C') + i)}": (name, "percentunit")
            for i, (name, _, _) in enumerate(RATE_RULES)
        },
    }
    autoresponder_table = table(
        "Autoresponders",
        "One row per autoresponder: lifetime recipients, recipients of the last 24 hours and "
        "lifetime rates. Click a column header to sort.",
        [
            target(
                f"sum by ({AR_LABELS}) (pinpointe_autoresponder_recipients{{{SEL}}})",
                ref="A",
                instant=True,
                fmt="table",
            ),
            # sum by () drops __name__: the table's merge joins rows on their labels
            target(
                f"sum by ({AR_LABELS}) ({AR24}recipients:delta24h{{{SEL}}})",
                ref="B",
                instant=True,
                fmt="table",
            ),
            *[
                target(
                    f"sum by ({AR_LABELS}) ({AR24}{stem}:ratio{{{SEL}}})",
                    ref=chr(ord("C") + i),
                    instant=True,
                    fmt="table",
                )
                for i, (_, stem, _) in enumerate(RATE_RULES)
            ],
        ],
        columns,
        "Value #A",
        h=12,
        styles={
            f"Value #{chr(ord('C') + i)}": stem
            for i, (_, stem, _) in enumerate(RATE_RULES)
            if stem in RATE_STYLE
        },
    )
    one = 'account=~"$account", autoresponder_id=~"$autoresponder"'
    drill_down = [
        timeseries(
            "Cumulative figures",
            "Pinpointe's cumulative figures for this autoresponder, as polled.",
            [
                target(
                    f"max by (account) (pinpointe_autoresponder_{m}{{{one}}})",
                    f"{m} ({{{{account}}}})",
                    chr(ord("A") + i),
                )
                for i, m in enumerate(
                    ("recipients", "unique_opens", "unique_clicks", "unsubscribes", "complaints")
                )
            ]
            + [
                target(
                    f"sum by (account) (max by (account, bounce_type) "
                    f"(pinpointe_autoresponder_bounces{{{one}}}))",
                    "bounces ({{account}})",
                    "F",
                )
            ],
            "short",
            w=8,
        ),
        timeseries(
            "Lifetime rates",
            "All-time ratios of this autoresponder (recording rules "
            "account_autoresponder:*:ratio).",
            [
                target(
                    f"{AR24}{stem}:ratio{{{one}}}",
                    f"{name.lower()} ({{{{account}}}})",
                    chr(ord("A") + i),
                )
                for i, (name, stem, _) in enumerate(RATE_RULES)
            ],
            "percentunit",
            w=8,
        ),
        timeseries(
            "Recipients, last 24 h",
            "Emails sent in the last 24 hours (recording rule *:recipients:delta24h; whole "
            "clock hours, so it lags up to an hour).",
            [target(f"{AR24}recipients:delta24h{{{one}}}", "{{account}}")],
            "short",
            w=8,
        ),
    ]
    send_columns = {
        "Value #A": ("Recipients", "short"),
        "Value #B": ("Open rate", "percentunit"),
        "Value #C": ("Click rate", "percentunit"),
        "Value #D": ("Bounce rate", "percentunit"),
        "Value #E": ("Started", "dateTimeAsIso"),
    }

    def send_ratio(numerator: str) -> str:
        return (
            f"sum by ({SEND_LABELS}) (pinpointe_autoresponder_send_{numerator}{{{SEL}}})\n/\n"
            f"(sum by ({SEND_LABELS}) (pinpointe_autoresponder_send_recipients{{{SEL}}}) > 0)"
        )

    per_send = [
        table(
            "Sends",
            "One row per autoresponder send (needs `groupings: [send]` in the exporter's "
            "configuration; empty otherwise). Newest sends first.",
            [
                target(
                    f"sum by ({SEND_LABELS}) (pinpointe_autoresponder_send_recipients{{{SEL}}})",
                    ref="A",
                    instant=True,
                    fmt="table",
                ),
                target(send_ratio("unique_opens"), ref="B", instant=True, fmt="table"),
                target(send_ratio("unique_clicks"), ref="C", instant=True, fmt="table"),
                target(send_ratio("bounces"), ref="D", instant=True, fmt="table"),
                target(
                    f"max by ({SEND_LABELS}) "
                    f"(pinpointe_autoresponder_send_start_timestamp_seconds{{{SEL}}}) * 1000",
                    ref="E",
                    instant=True,
                    fmt="table",
                ),
            ],
            send_columns,
            "Value #E",
            h=10,
            styles={"Value #D": "bounces_per_recipients"},
        ),
        timeseries(
            "Recipients per send",
            "Cumulative recipients of each send (needs `groupings: [send]`).",
            [
                target(
                    f"sum by ({SEND_LABELS}) (pinpointe_autoresponder_send_recipients{{{SEL}}})",
                    "{{autoresponder_name}} send {{send_id}}",
                )
            ],
            "short",
            w=24,
        ),
    ]
    panels = [
        row("Is everything OK?"),
        *overview(),
        row("Selected time range"),
        *headline,
        row("Rates over time"),
        *over_time,
        row("Autoresponders"),
        autoresponder_table,
        row(
            "Autoresponder: ${autoresponder:text}",
            collapsed=True,
            repeat="autoresponder",
            panels=drill_down,
        ),
        row("Per send", collapsed=True, panels=per_send),
    ]
    variables = [
        datasource_variable(),
        query_variable("account", "Account", "label_values(pinpointe_up, account)"),
        # values are ids, texts are names: duplicate names stay apart, a rename keeps
        # the selection
        query_variable(
            "autoresponder",
            "Autoresponder",
            f"query_result(max by (autoresponder_id, autoresponder_name) "
            f"(pinpointe_autoresponder_recipients{{{ACC}}}))",
            regex=AUTORESPONDER_REGEX,
        ),
    ]
    return dashboard(
        "pinpointe-autoresponders",
        "Pinpointe autoresponders",
        "Engagement of Pinpointe autoresponders from pinpointe-exporter: what is wrong now, "
        "volumes, open, click, bounce, unsubscribe and complaint rates.",
        variables,
        panels,
        [
            link_to("Pinpointe exporter", "pinpointe-exporter"),
            readme_link("Runbooks", "runbooks"),
        ],
        [alert_annotation()],
    )


# query_result lines look like {autoresponder_id="7", autoresponder_name="Welcome"} 1 1700000000
AUTORESPONDER_REGEX = '/autoresponder_id="(?<value>[^"]*)".*autoresponder_name="(?<text>.*)"\\}/'


# ---- the exporter dashboard ---------------------------------------------------------


STALENESS = (
    f"(time() - max by (account) (pinpointe_last_success_timestamp_seconds{{{ACC}}}))\n/\n"
    f"max by (account) (pinpointe_poll_interval_seconds{{{ACC}}})"
)
RELOAD_MAPPINGS = [
    {
        "type": "value",
        "options": {
            "0": {"text": "FAILED", "color": "red", "index": 0},
            "1": {"text": "OK", "color": "green", "index": 1},
        },
    }
]
# Panels on metrics that not every exporter serves (an unsharded process has no shard
# metrics; a release before configuration reload has no reload metrics):
# tests/test_e2e_alerting.py lets exactly these return no data while the exporter's
# /metrics lacks the metric.
OPTIONAL_PANELS = {
    "Configuration reload": "pinpointe_exporter_config_last_reload_successful",
    "Last successful configuration load": (
        "pinpointe_exporter_config_last_reload_success_timestamp_seconds"
    ),
    "Shards reporting": "pinpointe_exporter_shard_index",
}


def exporter_dashboard() -> Json:
    panels = [
        row("Health"),
        stat(
            "Accounts polled successfully",
            "pinpointe_up per account: UP if the last poll succeeded completely.",
            [target(f"pinpointe_up{{{ACC}}}", "{{account}}", instant=True)],
            "none",
            8,
            text_mode="value_and_name",
            mappings=UP_MAPPINGS,
            color_mode="background",
        ),
        stat(
            "Poll intervals since the last successful poll",
            "Orange from 1.5, red from "
            f"{THRESHOLDS['stale_poll_intervals']:g} poll intervals, where PinpointeDataStale "
            "fires.",
            [target(STALENESS, "{{account}}", instant=True)],
            "none",
            8,
            text_mode="value_and_name",
            color_mode="background",
            field={"thresholds": STALE, "decimals": 1},
            links=[runbook("PinpointeDataStale")],
        ),
        stat(
            "Exporter targets",
            "Prometheus' own scrape health of the exporter instances (up).",
            [target('up{job=~"$job"}', "{{instance}}", instant=True)],
            "none",
            4,
            text_mode="value_and_name",
            mappings=UP_MAPPINGS,
            color_mode="background",
        ),
        stat(
            "Exporter version",
            "pinpointe_exporter_build_info",
            [target('pinpointe_exporter_build_info{job=~"$job"}', "{{version}}", instant=True)],
            "none",
            4,
            text_mode="name",
        ),
        state_timeline(
            "Poll status over time",
            "pinpointe_up per account over time.",
            [target(f"pinpointe_up{{{ACC}}}", "{{account}}")],
            24,
            5,
        ),
        row("Polls"),
        timeseries(
            "Poll duration",
            "Wall time of the last poll of each account.",
            [target(f"pinpointe_poll_duration_seconds{{{ACC}}}", "{{account}}")],
            "s",
        ),
        timeseries(
            "Poll intervals since the last successful poll",
            "Time since the end of the last fully successful poll, in poll intervals, per "
            "account; the dashed line is where PinpointeDataStale fires.",
            [target(STALENESS, "{{account}}")],
            "none",
            field={"thresholds": STALE, "decimals": 1},
            links=[runbook("PinpointeDataStale")],
        ),
        timeseries(
            "Poll errors by reason",
            "Failed polls per reason (auth, http, timeout, ...) in each interval.",
            [
                target(
                    f"sum by (account, reason) (increase(pinpointe_poll_errors_total"
                    f"{{{ACC}}}[$__rate_interval]))",
                    "{{account}} {{reason}}",
                )
            ],
            "short",
        ),
        timeseries(
            "API requests by status code",
            "HTTP requests the exporter sends to Pinpointe, per second, by status code "
            "(error = no response).",
            [
                target(
                    f"sum by (account, code) (rate(pinpointe_api_requests_total"
                    f"{{{ACC}}}[$__rate_interval]))",
                    "{{account}} {{code}}",
                )
            ],
            "reqps",
        ),
        row("Configuration and shards"),
        stat(
            "Configuration reload",
            "pinpointe_exporter_config_last_reload_successful per exporter: FAILED when the "
            "last reload (SIGHUP or POST /-/reload) failed and the previous configuration is "
            "still in force.",
            [
                target(
                    'pinpointe_exporter_config_last_reload_successful{job=~"$job"}',
                    "{{instance}}",
                    instant=True,
                )
            ],
            "none",
            8,
            text_mode="value_and_name",
            mappings=RELOAD_MAPPINGS,
            color_mode="background",
            links=[runbook("PinpointeExporterConfigReloadFailed")],
        ),
        stat(
            "Last successful configuration load",
            "When each exporter last loaded its configuration successfully (start or reload).",
            [
                target(
                    'pinpointe_exporter_config_last_reload_success_timestamp_seconds{job=~"$job"}'
                    " * 1000",
                    "{{instance}}",
                    instant=True,
                )
            ],
            "dateTimeFromNow",
            8,
            text_mode="value_and_name",
        ),
        stat(
            "Shards reporting",
            "Sharded deployments (--shard INDEX/COUNT): distinct shard indexes reporting, and "
            "the configured count. PinpointeExporterShardMissing fires when fewer report.",
            [
                target(
                    'count by (job) (count_values by (job) ("shard", '
                    'pinpointe_exporter_shard_index{job=~"$job"}))',
                    "reporting",
                    "A",
                    instant=True,
                ),
                target(
                    'max by (job) (pinpointe_exporter_shard_count{job=~"$job"})',
                    "configured",
                    "B",
                    instant=True,
                ),
            ],
            "none",
            8,
            text_mode="value_and_name",
            links=[runbook("PinpointeExporterShardMissing")],
        ),
        row("Data"),
        timeseries(
            "Records per account",
            "Records in the published snapshot, by grouping (autoresponder, send).",
            [target(f"pinpointe_records{{{ACC}}}", "{{account}} {{grouping}}")],
            "short",
        ),
        timeseries(
            "Skipped values",
            "Values in the snapshot that were not non-negative numbers and were skipped.",
            [target(f"pinpointe_skipped_values{{{ACC}}}", "{{account}} {{grouping}}")],
            "short",
        ),
        table(
            "Unmapped API fields",
            "Numeric fields Pinpointe sent that no metric carries; map them with the "
            "account's field_map. A row '(none)' means every numeric field is mapped.",
            [
                target(
                    f"pinpointe_unmapped_field_info{{{ACC}}}\n"
                    + _placeholder_row("field", "(none)"),
                    ref="A",
                    instant=True,
                    fmt="table",
                )
            ],
            {"field": ("Field", "none")},
            "field",
            h=8,
            hide=("Time", "Value", "__name__", "instance", "job"),
            descending=False,
        ),
    ]
    variables = [
        datasource_variable(),
        query_variable("job", "Job", "label_values(pinpointe_exporter_build_info, job)"),
        query_variable("account", "Account", 'label_values(pinpointe_up{job=~"$job"}, account)'),
    ]
    return dashboard(
        "pinpointe-exporter",
        "Pinpointe exporter",
        "Health of pinpointe-exporter: polls per account, errors, API requests, records.",
        variables,
        panels,
        [
            link_to("Pinpointe autoresponders", "pinpointe-autoresponders"),
            readme_link("Runbooks", "runbooks"),
        ],
        [alert_annotation()],
    )


# ---- reading dashboards back (used by the tests) ----------------------------------


def iter_panels(dash: Json) -> list[Json]:
    """Every panel, including those stored inside collapsed rows."""
    out: list[Json] = []
    for panel in dash["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def queries(dash: Json) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable of a dashboard."""
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


def substitute(expr: str, values: dict[str, str]) -> str:
    """Replace $name and ${name} (dashboard variables and Grafana's $__ built-ins)."""
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace("${" + name + "}", values[name]).replace("$" + name, values[name])
    return expr


DASHBOARDS = {
    "pinpointe-autoresponders.json": autoresponders_dashboard,
    "pinpointe-exporter.json": exporter_dashboard,
}


def render(build: Any) -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 if a committed dashboard differs from the generated one",
    )
    args = parser.parse_args(argv)
    stale = []
    for name, build in DASHBOARDS.items():
        path = OUT_DIR / name
        text = render(build)
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if stale:
        print(
            "out of date: " + ", ".join(stale) + "; run python grafana/generate.py", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
