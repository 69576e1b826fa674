#!/usr/bin/env python3
"""Render the mixin into the files the repository ships (`make mixin`).

    .venv/bin/python mixin/render.py           # rewrite them
    .venv/bin/python mixin/render.py --check   # exit 1, with a diff, if one differs
    .venv/bin/python mixin/render.py --out DIR # write them under DIR instead

prometheus/rules.yml and alerts.yml, grafana/dashboards/*.json, the dashboard provider
of grafana/provisioning/ (Compose mounts all of them), then the Kubernetes
PrometheusRules and dashboard ConfigMaps mirrored from those files by
scripts/gen-k8s-manifests. Needs the `jsonnet` package (the test extras).
"""

from __future__ import annotations

import argparse
import copy
import difflib
import importlib.machinery
import importlib.util
import json
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import _jsonnet
import yaml

MIXIN = Path(__file__).resolve().parent
ROOT = MIXIN.parent
PROVIDER = "grafana/provisioning/dashboards/pinpointe.yml"
DASHBOARDS_IN_GRAFANA = "/var/lib/grafana/dashboards/pinpointe"
KEY_ORDER = [
    "name", "interval", "rules", "record", "alert", "expr", "for", "keep_firing_for",
    "labels", "annotations", "summary", "description", "figure", "runbook_url", "dashboard_url",
]  # fmt: skip
GENERATED = (
    "# GENERATED from mixin/ by `make mixin` (mixin/render.py): edit mixin/*.libsonnet,\n"
    "# not this file. {what}\n"
)


def evaluate(config: str = "{}") -> dict[str, Any]:
    """The mixin with ``config`` (a jsonnet object) merged into its _config."""
    snippet = f"""
      local mixin = (import 'mixin.libsonnet') + {{ _config+:: {config} }};
      {{
        rules: mixin.prometheusRules,
        alerts: mixin.prometheusAlerts,
        dashboards: mixin.grafanaDashboards,
        thresholds: mixin.thresholdTable,
        config: mixin._config,
      }}
    """
    result: dict[str, Any] = json.loads(
        _jsonnet.evaluate_snippet("render", snippet, jpathdir=[str(MIXIN)])
    )
    return result


class _Dumper(yaml.SafeDumper):
    """Rule files as people write them: keys in the usual order, lists indented,
    expressions as literal blocks, long annotations folded."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)

    def process_scalar(self) -> None:
        # one long line for everything but the folded annotations, wrapped at 100
        if self.style is None:
            self.style = self.choose_scalar_style()
        self.best_width = 100 if self.style == ">" else 1_000_000
        super().process_scalar()


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else (">" if len(value) > 100 and " " in value else None)
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _dict(dumper: yaml.SafeDumper, value: dict[str, Any]) -> yaml.MappingNode:
    rank = {key: i for i, key in enumerate(KEY_ORDER)}
    items = sorted(value.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0]))
    return dumper.represent_mapping("tag:yaml.org,2002:map", items)


_Dumper.add_representer(str, _str)
_Dumper.add_representer(dict, _dict)


def rule_file(groups: dict[str, Any], header: str) -> str:
    groups = copy.deepcopy(groups)
    for group in groups["groups"]:
        for rule in group["rules"]:
            rule["expr"] = rule["expr"].rstrip("\n")
    text = header + yaml.dump(groups, Dumper=_Dumper, width=100, allow_unicode=True)
    assert yaml.safe_load(text) == groups, "the YAML does not read back as the mixin's rules"
    return text


def thresholds_header(rows: list[list[Any]]) -> str:
    width = max(len(row[0]) for row in rows)
    lines = [
        "# Thresholds: the first group records each as pinpointe:alert_threshold{threshold=...};",
        "# the alerts read them with scalar() and their annotations print them, so a number",
        "# changed there changes both (mixin/config.libsonnet sets them). `for:` and",
        "# `keep_firing_for:` (Prometheus 2.42+) are on the alerts. Load rules.yml too.",
        "#",
        f"#   {'threshold':<{width}}  {'value':>8}  used by",
    ]  # fmt: skip
    lines += [f"#   {name:<{width}}  {value:>8g}  {use}" for name, value, use in rows]
    return "\n".join(lines) + "\n\n"


def provider(folder: str) -> str:
    doc = {
        "apiVersion": 1,
        "providers": [
            {
                "name": "pinpointe",
                "folder": folder,
                "type": "file",
                "disableDeletion": True,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 60,
                "options": {"path": DASHBOARDS_IN_GRAFANA, "foldersFromFilesStructure": False},
            }
        ],
    }
    header = GENERATED.format(what="Mount this directory at") + (
        "# /etc/grafana/provisioning/dashboards and the repository's grafana/dashboards/\n"
        "# at the path below, e.g. with docker:\n"
        '#   -v "$PWD/grafana/provisioning:/etc/grafana/provisioning:ro"\n'
        f'#   -v "$PWD/grafana/dashboards:{DASHBOARDS_IN_GRAFANA}:ro"\n'
    )
    return header + yaml.safe_dump(doc, sort_keys=False)


def files(mixin: dict[str, Any]) -> dict[str, str]:
    """Repository path -> content, for everything rendered from the mixin itself."""
    out = {
        "prometheus/rules.yml": rule_file(
            mixin["rules"],
            GENERATED.format(what="Recording rules; docs/alerting.md explains them.") + "\n",
        ),
        "prometheus/alerts.yml": rule_file(
            mixin["alerts"],
            GENERATED.format(what="Alerts; they read the recording rules of rules.yml.")
            + "#\n"
            + thresholds_header(mixin["thresholds"]),
        ),
        PROVIDER: provider(mixin["config"]["grafanaFolder"]),
    }
    for name, dashboard in mixin["dashboards"].items():
        out[f"grafana/dashboards/{name}"] = (
            json.dumps(dashboard, indent=2, ensure_ascii=False) + "\n"
        )
    return out


def kubernetes() -> ModuleType:
    path = ROOT / "scripts" / "gen-k8s-manifests"
    loader = importlib.machinery.SourceFileLoader("gen_k8s_manifests", str(path))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def render(root: Path, mixin: dict[str, Any]) -> dict[str, str]:
    """Write every rendered file under ``root``; return path -> content, Kubernetes included."""
    out = files(mixin)
    stale = {p.relative_to(root).as_posix() for p in (root / "grafana/dashboards").glob("*.json")}
    for rel in stale - set(out):
        (root / rel).unlink()
    for rel, text in out.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    k8s = kubernetes()
    for rel, text in k8s.outputs(root, folder=mixin["config"]["grafanaFolder"]).items():
        out[rel.as_posix()] = text
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return out


def check(mixin: dict[str, Any]) -> list[str]:
    """Paths whose committed content differs from the rendering (a diff on stderr)."""
    with tempfile.TemporaryDirectory() as tmp:
        rendered = render(Path(tmp), mixin)
    committed = {
        p.relative_to(ROOT).as_posix() for p in (ROOT / "grafana/dashboards").glob("*.json")
    }
    stale = sorted(committed - set(rendered))
    for rel, text in rendered.items():
        path = ROOT / rel
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            stale.append(rel)
            diff = difflib.unified_diff(
                current.splitlines(keepends=True), text.splitlines(keepends=True),
                fromfile=f"{rel} (committed)", tofile=f"{rel} (rendered)", n=1,
            )  # fmt: skip
            sys.stderr.writelines(list(diff)[:40])
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed file differs")
    parser.add_argument("--out", type=Path, help="render under this directory instead")
    args = parser.parse_args(argv)
    mixin = evaluate()
    if args.check:
        stale = check(mixin)
        if stale:
            print("out of date: " + ", ".join(stale) + "; run make mixin", file=sys.stderr)
            return 1
        return 0
    for rel in sorted(render(args.out or ROOT, mixin)):
        print(f"rendered {rel}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
