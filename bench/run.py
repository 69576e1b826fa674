"""Benchmark: this exporter against what users would run instead, side by side in one run.

For N autoresponders (about 11 samples each) the same series are served five ways:

- exporter:       this exporter, a real process polling the simulator (page size 100)
- client_python:  the usual prometheus_client exporter, Gauges with labels rendered at
                  scrape time (bench/client_python_peer.py)
- client_python_cached: the same Gauges rendered once after the poll, plain and gzip, and
                  the cached bytes served by http.server (client_python_peer.py --cached)
- pushgateway:    Debian's prometheus-pushgateway holding the exporter's pinpointe_* series
- nginx:          nginx serving the exporter's bytes as a static file (gzip_static on)

and measured with wrk (or a Python loop for scrapes slower than SLOW_SCRAPE): scrape latency
p50/p99 plain and gzip, 1 and 8 concurrent scrapers. The ways are measured in turn for each
cell, so a change in the machine's load affects neighbours in a row alike; every wrk cell
checks that the bytes it received per response are the body that was meant (not an error
page). For the exporter also: wall time, CPU seconds and resident memory of one poll, and
scrape latency while a poll runs.

The simulator runs in this process behind a gate: a poll of the exporter waits at its first
request until the benchmark opens the gate, so polls happen only when they are measured.

    make bench                      # or: .venv/bin/python bench/run.py [--sizes 1000,10000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.figures import BENCH, WAYS, Results  # noqa: E402
from bench.measure import log  # noqa: E402
from bench.report import _load, machine, markdown, plot, targets  # noqa: E402
from bench.ways import Bench  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,50000", help="autoresponder counts")
    parser.add_argument("--seconds", type=int, default=5, help="wrk duration per cell")
    parser.add_argument("--out", default=str(BENCH / "results"), help="results directory")
    parser.add_argument("--ways", default=",".join(WAYS), help="which ways to measure")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        log("wrk is not installed (apt-get install wrk): every scrape is measured with Python")
    results = Results(machine=machine())
    results.machine["load average at start"] = _load()
    started = time.monotonic()
    for size in (int(x) for x in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix=f"pinpointe-bench-{size}-") as tmp:
            bench = Bench(size, Path(tmp), args.seconds, results, args.ways.split(","))
            try:
                bench.run()
            finally:
                bench.close()
    results.machine["load average at end"] = _load()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = markdown(results)
    checks = targets(results)
    report += "\nTargets\n\n" + "\n".join(
        f"- {'PASS' if ok else 'FAIL' if ok is False else 'info'}: {what}: {value}"
        for what, ok, value in checks
    )
    report += "\n\nMachine: " + "; ".join(f"{k} {v}" for k, v in results.machine.items()) + "\n"
    report += f"Run time: {time.monotonic() - started:.0f} s\n"
    print(report)
    (out / "results.md").write_text(report)
    (out / "results.json").write_text(json.dumps(asdict(results), indent=1) + "\n")
    plot(results, out / "scrape_latency.png")
    return 1 if any(ok is False for _, ok, _ in checks) else 0


if __name__ == "__main__":
    raise SystemExit(main())
