"""What the docs promise of a running exporter: the metrics table is the exposition, the
status API example has the keys it serves."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT, ExporterProcess

DOCS = ROOT / "docs"


def readme_metrics() -> dict[str, str]:
    text = (DOCS / "metrics.md").read_text(encoding="utf-8")
    section = text.split("\n## Endpoints", 1)[0]
    rows = re.findall(r"^\| `(pinpointe_[a-z_]+)`(?:\{[^}]*\})? \| (\w+) \|", section, re.M)
    return dict(rows)


def test_readme_metrics_table_matches_the_exposition(
    exporter: Callable[..., ExporterProcess], tmp_path: Path
) -> None:
    # --shard=0/1 polls every account and adds the shard gauges (only exported with
    # --shard); a web config adds its reload gauges.
    web_config = tmp_path / "web.yml"
    web_config.write_text("{}\n")
    handle = exporter(None, "--demo", "--shard=0/1", f"--web.config.file={web_config}")
    emitted = {}
    for family in text_string_to_metric_families(handle.get().text):
        if family.name.startswith("pinpointe_"):
            name = family.name + ("_total" if family.type == "counter" else "")
            emitted[name] = family.type
    documented = readme_metrics()
    assert documented == emitted


def test_the_status_api_example_has_the_keys_the_exporter_serves(
    exporter: Callable[..., ExporterProcess],
) -> None:
    text = (DOCS / "metrics.md").read_text(encoding="utf-8")
    block = re.search(r"`/api/v1/status` serves the same facts.*?```json\n(.*?)```", text, re.S)
    assert block, "the /api/v1/status example in docs/metrics.md is gone"
    example = json.loads(block.group(1))
    served = exporter(None, "--demo").get("/api/v1/status").json()
    assert list(example) == list(served)
    assert list(example["config"]) == list(served["config"])
    assert list(example["accounts"][0]) == list(served["accounts"][0])
