#!/usr/bin/env python3
"""Generate the Grafana dashboards of pinpointe-exporter (Grafana 10/11 JSON model).

    python grafana/generate.py           # rewrite grafana/dashboards/*.json
    python grafana/generate.py --check   # exit 1 if a committed file differs

The dashboards are plain data built here with the standard library only, so that
anyone can regenerate them; tests/test_dashboards.py fails when the committed
JSON and this script disagree. Edit this file, not the JSON.

Conventions kept by every panel:
  * datasource {"type": "prometheus", "uid": "${datasource}"}: no hard-coded UID;
  * every query selects account=~"$account" (and autoresponder_name=~"$autoresponder"
    on the autoresponders dashboard), so the variables filter everything;
  * ratios are 0-1 (unit percentunit) and come from prometheus/rules.yml where a
    recording rule exists.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

OUT_DIR = Path(__file__).resolve().parent / "dashboards"
SCHEMA_VERSION = 39  # Grafana 10.4 / 11.x; older 10.x migrate it on load
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

ACC = 'account=~"$account"'
SEL = 'account=~"$account", autoresponder_name=~"$autoresponder"'
AR_LABELS = "account, autoresponder_id, autoresponder_name"
SEND_LABELS = "account, autoresponder_id, autoresponder_name, send_id"

Json = dict[str, Any]


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
) -> Json:
    extra: Json = {"color": {"mode": "thresholds"}}
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
        "_size": (w, h),
    }


def timeseries(
    title: str, description: str, targets: list[Json], unit: str, w: int = 12, h: int = 8
) -> Json:
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": targets,
        "fieldConfig": _field_config(
            unit,
            {
                "custom": {
                    "drawStyle": "line",
                    "lineWidth": 1,
                    "fillOpacity": 10,
                    "showPoints": "never",
                    "spanNulls": True,
                }
            },
        ),
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


def state_timeline(title: str, description: str, targets: list[Json], w: int, h: int) -> Json:
    return {
        "type": "state-timeline",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": targets,
        "fieldConfig": _field_config(
            "none", {"color": {"mode": "thresholds"}, "mappings": UP_MAPPINGS}
        ),
        "options": {
            "showValue": "never",
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
) -> Json:
    """columns: field name in the merged frame -> (display name, unit)."""
    overrides = [
        {
            "matcher": {"id": "byName", "options": name},
            "properties": [{"id": "unit", "value": unit}]
            + ([{"id": "decimals", "value": 1}] if unit == "percentunit" else []),
        }
        for name, (_, unit) in columns.items()
    ]
    order = {
        name: i
        for i, name in enumerate(
            ["account", "autoresponder_name", "autoresponder_id", "send_id", *columns]
        )
    }
    return {
        "type": "table",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": targets,
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


def query_variable(name: str, label: str, query: str) -> Json:
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
        "regex": "",
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
                }
            ]
        },
        "links": links,
        "templating": {"list": variables},
        "panels": layout(panels),
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


def _range_volume(metric: str, extra: str = "") -> str:
    """Growth of a cumulative gauge over the dashboard's range (see prometheus/rules.yml)."""
    return f"sum(clamp_min(delta({metric}{{{SEL}{extra}}}[$__range]), 0))"


def _range_ratio(numerator: str, numerator_extra: str = "") -> str:
    return (
        f"{_range_volume(numerator, numerator_extra)}\n/\n"
        f"({_range_volume('pinpointe_autoresponder_recipients')} > 0)"
    )


RATE_RULES = (
    ("Open rate", "open_rate"),
    ("Click rate", "click_rate"),
    ("Click-to-open rate", "click_to_open_rate"),
    ("Bounce rate", "bounce_rate"),
    ("Hard-bounce rate", "hard_bounce_rate"),
    ("Unsubscribe rate", "unsubscribe_rate"),
    ("Complaint rate", "complaint_rate"),
)


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
        stat(
            "Open rate",
            "Unique opens / recipients, both counted over the selected time range.",
            [target(_range_ratio("pinpointe_autoresponder_unique_opens"), instant=True)],
            "percentunit",
            4,
        ),
        stat(
            "Click rate",
            "Unique clicks / recipients over the selected time range.",
            [target(_range_ratio("pinpointe_autoresponder_unique_clicks"), instant=True)],
            "percentunit",
            4,
        ),
        stat(
            "Bounce rate",
            "Bounces of every kind / recipients over the selected time range.",
            [target(_range_ratio("pinpointe_autoresponder_bounces"), instant=True)],
            "percentunit",
            4,
        ),
        stat(
            "Unsubscribe rate",
            "Unsubscribes / recipients over the selected time range.",
            [target(_range_ratio("pinpointe_autoresponder_unsubscribes"), instant=True)],
            "percentunit",
            4,
        ),
        stat(
            "Complaint rate",
            "Spam complaints (feedback loops) / recipients over the selected time range.",
            [target(_range_ratio("pinpointe_autoresponder_complaints"), instant=True)],
            "percentunit",
            4,
        ),
    ]
    over_time = [
        timeseries(
            "Open and click rate, last 24 h",
            "Unique opens and unique clicks of the last 24 hours / recipients of the last 24 "
            "hours, per autoresponder (recording rules *:ratio_delta24h).",
            [
                target(
                    f"account_autoresponder:pinpointe_autoresponder_open_rate:ratio_delta24h"
                    f"{{{SEL}}}",
                    "open {{autoresponder_name}} ({{account}})",
                    "A",
                ),
                target(
                    f"account_autoresponder:pinpointe_autoresponder_click_rate:ratio_delta24h"
                    f"{{{SEL}}}",
                    "click {{autoresponder_name}} ({{account}})",
                    "B",
                ),
            ],
            "percentunit",
        ),
        timeseries(
            "Bounce, unsubscribe and complaint rate, last 24 h",
            "Share of the last 24 hours' recipients that bounced, unsubscribed or complained, "
            "per autoresponder. The alerts PinpointeHigh*Rate use these series.",
            [
                target(
                    f"account_autoresponder:pinpointe_autoresponder_bounce_rate:ratio_delta24h"
                    f"{{{SEL}}}",
                    "bounce {{autoresponder_name}} ({{account}})",
                    "A",
                ),
                target(
                    "account_autoresponder:pinpointe_autoresponder_unsubscribe_rate:"
                    f"ratio_delta24h{{{SEL}}}",
                    "unsubscribe {{autoresponder_name}} ({{account}})",
                    "B",
                ),
                target(
                    "account_autoresponder:pinpointe_autoresponder_complaint_rate:"
                    f"ratio_delta24h{{{SEL}}}",
                    "complaint {{autoresponder_name}} ({{account}})",
                    "C",
                ),
            ],
            "percentunit",
        ),
        timeseries(
            "Lifetime rates per account",
            "Cumulative (all-time) ratios per account, components summed over the account's "
            "autoresponders before dividing (recording rules account:*:ratio).",
            [
                target(
                    f"account:pinpointe_autoresponder_{rule}:ratio{{{ACC}}}",
                    f"{name.lower()} {{{{account}}}}",
                    chr(ord("A") + i),
                )
                for i, (name, rule) in enumerate(RATE_RULES)
            ],
            "percentunit",
        ),
        timeseries(
            "Recipients, opens and clicks, last 24 h",
            "Emails sent, opens and clicks of the last 24 hours, summed over the selected "
            "autoresponders (recording rules *:delta24h).",
            [
                target(
                    f"sum(account_autoresponder:pinpointe_autoresponder_{m}:delta24h{{{SEL}}})",
                    m,
                    chr(ord("A") + i),
                )
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
            for i, (name, _) in enumerate(RATE_RULES)
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
                f"sum by ({AR_LABELS}) "
                f"(account_autoresponder:pinpointe_autoresponder_recipients:delta24h{{{SEL}}})",
                ref="B",
                instant=True,
                fmt="table",
            ),
            *[
                target(
                    f"sum by ({AR_LABELS}) "
                    f"(account_autoresponder:pinpointe_autoresponder_{rule}:ratio{{{SEL}}})",
                    ref=chr(ord("C") + i),
                    instant=True,
                    fmt="table",
                )
                for i, (_, rule) in enumerate(RATE_RULES)
            ],
        ],
        columns,
        "Value #A",
        h=12,
    )
    one = 'account=~"$account", autoresponder_name=~"$autoresponder"'
    drill_down = [
        timeseries(
            "Cumulative figures",
            "Pinpointe's cumulative figures for this autoresponder, as polled.",
            [
                target(
                    f"sum by (account) (pinpointe_autoresponder_{m}{{{one}}})",
                    f"{m} ({{{{account}}}})",
                    chr(ord("A") + i),
                )
                for i, m in enumerate(
                    ("recipients", "unique_opens", "unique_clicks", "unsubscribes", "complaints")
                )
            ]
            + [
                target(
                    f"sum by (account) (pinpointe_autoresponder_bounces{{{one}}})",
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
                    f"account_autoresponder:pinpointe_autoresponder_{rule}:ratio{{{one}}}",
                    f"{name.lower()} ({{{{account}}}})",
                    chr(ord("A") + i),
                )
                for i, (name, rule) in enumerate(RATE_RULES)
            ],
            "percentunit",
            w=8,
        ),
        timeseries(
            "Recipients per hour",
            "Emails sent per hour: growth of the recipients figure over the last hour.",
            [
                target(
                    f"sum by (account) (clamp_min(delta(pinpointe_autoresponder_recipients"
                    f"{{{one}}}[1h]), 0))",
                    "{{account}}",
                )
            ],
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
        row("Selected time range"),
        *headline,
        row("Rates over time"),
        *over_time,
        row("Autoresponders"),
        autoresponder_table,
        row(
            "Autoresponder: $autoresponder",
            collapsed=True,
            repeat="autoresponder",
            panels=drill_down,
        ),
        row("Per send", collapsed=True, panels=per_send),
    ]
    variables = [
        datasource_variable(),
        query_variable("account", "Account", "label_values(pinpointe_up, account)"),
        query_variable(
            "autoresponder",
            "Autoresponder",
            f"label_values(pinpointe_autoresponder_recipients{{{ACC}}}, autoresponder_name)",
        ),
    ]
    return dashboard(
        "pinpointe-autoresponders",
        "Pinpointe autoresponders",
        "Engagement of Pinpointe autoresponders from pinpointe-exporter: volumes, open, "
        "click, bounce, unsubscribe and complaint rates.",
        variables,
        panels,
        [link_to("Pinpointe exporter", "pinpointe-exporter")],
    )


# ---- the exporter dashboard ---------------------------------------------------------


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
            "Time since the last successful poll",
            "Alert PinpointeDataStale fires past 3 poll intervals.",
            [
                target(
                    f"time() - pinpointe_last_success_timestamp_seconds{{{ACC}}}",
                    "{{account}}",
                    instant=True,
                )
            ],
            "s",
            8,
            text_mode="value_and_name",
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
            "Time since the last successful poll",
            "Seconds since the end of the last fully successful poll, per account.",
            [target(f"time() - pinpointe_last_success_timestamp_seconds{{{ACC}}}", "{{account}}")],
            "s",
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
                    f"pinpointe_unmapped_field_info{{{ACC}}}\nor on (account)\n"
                    f"label_replace(0 * max by (account) (pinpointe_up{{{ACC}}}), "
                    f'"field", "(none)", "", "")',
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
        [link_to("Pinpointe autoresponders", "pinpointe-autoresponders")],
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
