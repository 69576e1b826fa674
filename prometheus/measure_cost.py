#!/usr/bin/env python3
"""Measure what the rules of rules.yml and alerts.yml read per evaluation.

    .venv/bin/python prometheus/measure_cost.py [--autoresponders 5] [--rules-dir prometheus]

Backfills a fresh Prometheus TSDB with 8 days and 2 hours of 1-minute samples (the
scrape interval of prometheus/prometheus.yml) of every engagement series of N
autoresponders, as the exporter exposes them, starts Prometheus on it, evaluates
every rule and alert expression once at the end of the data with the query API's
`stats=all`, and prints the samples each one read (totalQueryableSamples) and the
sum. The count grows linearly with the number of autoresponders, so the figure for
1,000 is the measured one times 1,000 / N. Series the rules record themselves do
not exist in the backfill: reading them (one sample per series and read) is not
counted. Needs promtool and prometheus on PATH.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
import yaml

from exporter.exposition.families import ENGAGEMENT

STEP = 60
SPAN = (8 * 24 + 2) * 3600


def openmetrics(autoresponders: int, end: int) -> str:
    # family -> its series' extra labels, as exporter/exposition/families.py exposes them
    families: dict[str, list[str]] = {}
    for suffix, extra, _ in ENGAGEMENT.values():
        families.setdefault(f"pinpointe_autoresponder_{suffix}", []).append(extra)
    lines: list[str] = []
    start = end - SPAN
    for name, extras in families.items():
        lines.append(f"# TYPE {name} gauge")
        for ar in range(1, autoresponders + 1):
            for extra in extras:
                labels = (
                    f'job="pinpointe",instance="exporter:9863",account="acme",'
                    f'autoresponder_id="{ar}",autoresponder_name="AR {ar}"'
                    + (f",{extra}" if extra else "")
                )
                for i, ts in enumerate(range(start, end + 1, STEP)):
                    lines.append(f"{name}{{{labels}}} {1000 + i // 5} {ts}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def expressions(rules_dir: Path) -> list[tuple[str, str]]:
    out = []
    for name in ("rules.yml", "alerts.yml"):
        for group in yaml.safe_load((rules_dir / name).read_text())["groups"]:
            for rule in group["rules"]:
                out.append((rule.get("record") or rule["alert"], rule["expr"]))
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--autoresponders", type=int, default=5)
    parser.add_argument("--rules-dir", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args(argv)
    end = int(time.time()) // STEP * STEP - 600
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        source = Path(tmp) / "series.om"
        source.write_text(openmetrics(args.autoresponders, end))
        subprocess.run(
            ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
            check=True,
            capture_output=True,
        )
        port = free_port()
        config = Path(tmp) / "prometheus.yml"
        config.write_text("global: {}\n")
        prometheus = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={data}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=30d",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(120):
                try:
                    if requests.get(f"{url}/-/ready", timeout=1).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                time.sleep(0.5)
            total = 0
            for name, expr in expressions(args.rules_dir):
                response = requests.get(
                    f"{url}/api/v1/query",
                    params={"query": expr, "time": str(end), "stats": "all"},
                    timeout=120,
                )
                body: dict[str, Any] = response.json()
                assert body["status"] == "success", (name, body)
                samples = int(body["data"]["stats"]["samples"]["totalQueryableSamples"])
                total += samples
                print(f"{samples:>10}  {name}")
        finally:
            prometheus.terminate()
            prometheus.wait(timeout=30)
    per_1000 = total * 1000 // args.autoresponders
    print(f"{total:>10}  total for {args.autoresponders} autoresponders per evaluation")
    factor = 1000 / args.autoresponders
    print(f"{per_1000:>10}  for 1,000 autoresponders per evaluation (x {factor:g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
