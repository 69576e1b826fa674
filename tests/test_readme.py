"""What the README and the docs promise: the two commands, the metrics table, the status
API's example, the troubleshooting guide served as written, links that lead somewhere."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ExporterProcess

ROOT = Path(__file__).resolve().parent.parent


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


def test_readme_quick_start_commands_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    assert "```sh\nmake demo\n```" in readme
    assert f"```sh\n{ci}\n```" in readme
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)


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


def test_the_troubleshooting_chapter_is_the_page_the_exporter_serves() -> None:
    served = ROOT / "exporter" / "status" / "troubleshooting.md"
    assert (DOCS / "troubleshooting.md").read_text() == served.read_text()


def test_every_relative_link_in_the_docs_leads_to_a_file_and_heading() -> None:
    broken = []
    for page in [ROOT / "README.md", *DOCS.glob("*.md"), ROOT / "CONTRIBUTING.md"]:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                broken.append(f"{page.name}: {target}")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert broken == []


def anchors(page: Path) -> set[str]:
    """GitHub's anchors of a Markdown page's headings."""
    found = set()
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") and not line.startswith("#!"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


def test_readme_stays_short() -> None:
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 300
