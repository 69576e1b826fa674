#!/usr/bin/env python3
"""What the rules cost a user's Prometheus: seconds of rule evaluation per minute.

    .venv/bin/python bench/rule_cost.py   # the shipped rules, 1,000 autoresponders
    .venv/bin/python bench/rule_cost.py --autoresponders 10000 \\
        --rules before=/tmp/old-rules --rules after=prometheus

Backfills a fresh TSDB (promtool tsdb create-blocks-from openmetrics) with 8 days and
2 hours of 1-minute samples of every series an exporter with N autoresponders serves
(accounts of 100), serves the same series live from this process so that the history
continues, starts Prometheus 2.42+ on it with the rule files of each --rules directory
in turn (rules.yml and alerts.yml, at the shipped 1m evaluation_interval) and reads
Prometheus' own prometheus_rule_group_last_duration_seconds after each evaluation of
each group. Per group it reports the median of --evaluations evaluations; seconds per
minute is that median times the evaluations a minute of the group's own interval. A
group with an interval longer than a minute (the hourly increases) is evaluated every
minute here, so that the run takes minutes rather than hours, and counted once per
its interval: its expression does the same work whenever it runs.

Series the rules record are backfilled too where the rules read them back: a week
earlier (`offset 7d`) for every group, and the last 26 hours for the groups of an
interval over a minute. Needs promtool and prometheus on PATH, about 1 GB of disk per
1,000 autoresponders while it runs.
"""

from __future__ import annotations

import argparse
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.rule_cost_data import STEP, Fleet, exposition, openmetrics_window  # noqa: E402

RULE_FILES = ("rules.yml", "alerts.yml")
BLOCK = 2 * 3600
WEEK = 7 * 86400
UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def seconds(duration: str) -> float:
    return sum(float(n) * UNITS[u] for n, u in re.findall(r"(\d+)(ms|[smhdw])", duration))


def groups(rules_dir: Path) -> list[dict[str, Any]]:
    out = []
    for name in RULE_FILES:
        for group in yaml.safe_load((rules_dir / name).read_text())["groups"]:
            out.append({**group, "file": name})
    return out


def recorded_series(rule_sets: dict[str, Path]) -> dict[str, dict[str, int]]:
    """The recorded series the rules read back from the past: "range" (through a range
    selector, over the last day) and "offset <seconds>" (that long back), each name ->
    the shortest interval of a group recording it. Those read at an instant are live."""
    intervals: dict[str, int] = {}
    exprs = []
    for rules_dir in rule_sets.values():
        for group in groups(rules_dir):
            interval = int(seconds(group.get("interval", "1m")))
            for rule in group["rules"]:
                exprs.append(rule["expr"])
                if "record" in rule:
                    intervals[rule["record"]] = min(
                        interval, intervals.get(rule["record"], interval)
                    )
    out: dict[str, dict[str, int]] = {"range": {}}
    pattern = r"([a-z_]+:[a-z_]+:[a-z0-9_]+)(\[|\)? offset (\w+))"
    for expr in exprs:
        for name, how, offset in re.findall(pattern, expr):
            key = "range" if how == "[" else f"offset {int(seconds(offset))}"
            out.setdefault(key, {})[name] = intervals[name]
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def windows(end: int) -> list[tuple[int, int]]:
    """The 2 h blocks the rules read: the last 26 hours, and a week and a day earlier (the
    offsets 7d, 7d1h, 8d and 24 h subqueries a week back). No rule reads the days between,
    so they are left out: a gap there changes no query and saves two thirds of the work."""
    spans = [(end - 26 * 3600, end), (end - 8 * 86400 - 2 * 3600, end - WEEK + 4 * 3600)]
    out = []
    for lo, hi in spans:
        lo -= lo % BLOCK
        out += [(t, min(t + BLOCK, hi)) for t in range(lo, hi, BLOCK)]
    return out


def backfill(
    fleet: Fleet, recorded: dict[str, dict[str, int]], end: int, data: Path, work: Path
) -> None:
    """One OpenMetrics file per 2 h block, written while promtool converts the previous."""

    def window_records(lo: int, hi: int) -> dict[str, int]:
        out = dict(recorded["range"]) if lo >= end - 26 * 3600 else {}
        for key, names in recorded.items():
            if key.startswith("offset "):
                # the measurement reads that far back from `end` to about two hours later
                back = int(key.split()[1])
                if lo < end - back + 3 * 3600 and hi > end - back - 3600:
                    out.update(names)
        return out

    def convert(path: Path) -> None:
        subprocess.run(
            ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(path), str(data)],
            check=True,
            capture_output=True,
        )
        path.unlink()

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = []
        for lo, hi in windows(end):
            path = work / f"{lo}.om"
            path.write_text(openmetrics_window(fleet, lo, hi, window_records(lo, hi)))
            pending.append(pool.submit(convert, path))
            while len(pending) > 1:
                pending.pop(0).result()
        for job in pending:
            job.result()


class Target:
    """The synthetic exporter, live: the backfill's series at the time of each scrape
    (rendered once a minute: 110,000 lines take a while at 10,000 autoresponders)."""

    def __init__(self, fleet: Fleet) -> None:
        rendered: dict[int, bytes] = {}
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                minute = int(time.time()) // STEP * STEP
                with lock:
                    if minute not in rendered:
                        rendered.clear()
                        rendered[minute] = exposition(fleet, minute).encode()
                    body = rendered[minute]
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])


def own_metrics(url: str) -> dict[tuple[str, str], float]:
    """(metric, rule_group) -> value of Prometheus' rule group metrics."""
    text = requests.get(f"{url}/metrics", timeout=30).text
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("prometheus_rule_group_") or sample.name.startswith(
                "prometheus_tsdb_blocks_loaded"
            ):
                out[(sample.name, sample.labels.get("rule_group", ""))] = sample.value
    return out


def wait_for(check: Any, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what}")
        time.sleep(2)


def settle(url: str) -> None:
    """Wait until Prometheus has compacted the backfilled blocks (no change for 3 minutes)."""
    seen: list[float] = []

    def stable() -> bool:
        blocks = own_metrics(url).get(("prometheus_tsdb_blocks_loaded", ""), -1)
        seen.append(blocks)
        return len(seen) > 90 and len(set(seen[-90:])) == 1

    wait_for(stable, "compaction to settle", 3 * 3600)


def measure(
    url: str, config: Path, base: str, rules_dir: Path, work: Path, evaluations: int
) -> list[dict[str, Any]]:
    """Load one rule set (every group at 1m) and collect each group's evaluation times."""
    measured = work / rules_dir.name.replace("/", "_")
    measured.mkdir(exist_ok=True)
    intervals: dict[str, float] = {}
    for name in RULE_FILES:
        doc = yaml.safe_load((rules_dir / name).read_text())
        for group in doc["groups"]:
            intervals[f"{measured / name};{group['name']}"] = seconds(group.pop("interval", "1m"))
        (measured / name).write_text(yaml.safe_dump(doc, sort_keys=False))
    config.write_text(base + "rule_files:\n" + "".join(f"  - {measured / n}\n" for n in RULE_FILES))
    requests.post(f"{url}/-/reload", timeout=60).raise_for_status()
    durations: dict[str, list[float]] = {group: [] for group in intervals}
    last: dict[str, float] = {}

    def done() -> bool:
        metrics = own_metrics(url)
        for group in intervals:
            iterations = metrics.get(("prometheus_rule_group_iterations_total", group), 0)
            if iterations != last.get(group, iterations):
                durations[group].append(
                    metrics[("prometheus_rule_group_last_duration_seconds", group)]
                )
            last[group] = iterations
        # the first evaluation after a reload starts with cold caches: not counted
        return all(len(d) > evaluations for d in durations.values())

    wait_for(done, "the rule groups to run", (evaluations + 5) * 120)
    rows = []
    for group, values in durations.items():
        median = statistics.median(values[1:])
        per_minute = median * 60 / intervals[group]
        rows.append(
            {
                "group": group.split(";")[1],
                "interval": intervals[group],
                "median": median,
                "per_minute": per_minute,
            }
        )
    return rows


class Prometheus:
    def __init__(self, config: Path, data: Path) -> None:
        self.args = [
            "prometheus", f"--config.file={config}", f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{free_port()}", "--web.enable-lifecycle",
            "--storage.tsdb.retention.time=30d",
        ]  # fmt: skip
        self.url = "http://" + self.args[3].split("=", 1)[1]
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for(lambda: _ready(self.url), "Prometheus to start", 1800)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=600)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--autoresponders", type=int, default=1000)
    parser.add_argument(
        "--rules",
        action="append",
        metavar="NAME=DIR",
        help="rule files to measure (default: after=prometheus)",
    )
    parser.add_argument("--evaluations", type=int, default=10)
    args = parser.parse_args(argv)
    rule_sets = {
        k: Path(v).resolve()
        for k, v in (r.split("=", 1) for r in args.rules or [f"after={ROOT / 'prometheus'}"])
    }
    fleet = Fleet(args.autoresponders, instance="bench-exporter:9863")
    target = Target(fleet)
    with tempfile.TemporaryDirectory() as tmp:
        work, data, staged = Path(tmp), Path(tmp) / "data", Path(tmp) / "staged"
        config = work / "prometheus.yml"
        base = (
            "global: {scrape_interval: 1m, scrape_timeout: 50s, evaluation_interval: 1m}\n"
            "scrape_configs:\n  - job_name: pinpointe\n    static_configs:\n"
            f"      - targets: ['127.0.0.1:{target.port}']\n"
            "    relabel_configs:\n      - {target_label: instance, replacement: '"
            + fleet.instance
            + "'}\n"
        )
        config.write_text(base)
        # Scraping starts first; the history is backfilled up to that moment and added
        # under the live data (a restart replays the write-ahead log), so the two meet.
        end = int(time.time()) // STEP * STEP
        prometheus = Prometheus(config, data)
        try:
            began = time.monotonic()
            backfill(fleet, recorded_series(rule_sets), end, staged, work)
            print(
                f"backfilled {args.autoresponders} autoresponders "
                f"in {time.monotonic() - began:.0f} s",
                flush=True,
            )
            prometheus.stop()
            for block in staged.iterdir():
                block.rename(data / block.name)
            prometheus.start()
            settle(prometheus.url)
            results = {
                name: measure(prometheus.url, config, base, path, work, args.evaluations)
                for name, path in rule_sets.items()
            }
        finally:
            prometheus.stop()
    report(args.autoresponders, results)
    return 0


def _ready(url: str) -> bool:
    try:
        return requests.get(f"{url}/-/ready", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def report(autoresponders: int, results: dict[str, list[dict[str, Any]]]) -> None:
    print(f"\n{autoresponders} autoresponders: seconds of rule evaluation (median of each group)")
    for name, rows in results.items():
        print(f"\n{name}:")
        for row in rows:
            print(
                f"  {row['group']:<40} every {row['interval']:>5.0f} s  "
                f"{row['median']:8.3f} s  {row['per_minute']:8.3f} s/min"
            )
        total = sum(row["per_minute"] for row in rows)
        print(f"  {'total':<40} {'':>19} {total:8.3f} s/min ({total / 60:.1%} of a core)")


if __name__ == "__main__":
    sys.exit(main())
