"""The image: its size, what it holds, and its cold start, measured with podman.

- size: the whole image, its base (the stand-in, see tests/integration/engine.py) and the
  layers the Dockerfile adds, each with the instruction that made it;
- contents: compilers or test code found in the image (there should be none), and what the
  Pinpointe simulator costs in it (bytes and files of exporter/simulator/, its fault
  injection module on its own);
- cold start: from `podman run` (hardened, as docs/deploy.md runs it) to the first 200 from
  /metrics and to the demo's first poll in /metrics, side by side with the same exporter
  started as a process on this machine, in turns, so a change in the machine's load affects
  both alike.

    make bench-container            # or: .venv/bin/python bench/container.py [--runs 7]

Needs what the container tests need (scripts/install-system-deps, the test extras, root).
Writes bench/results/container.json and prints the tables docs/deploy.md quotes.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import free_port  # noqa: E402
from tests.integration.engine import Engine, base_image, engine_env, unique  # noqa: E402

HARDENED = (
    "--read-only",
    "--tmpfs=/tmp",
    "--cap-drop=ALL",
    "--security-opt=no-new-privileges",
    "--memory=768m",
    "--publish=127.0.0.1::9863",
)
DEMO_UP = re.compile(r'^pinpointe_up\{account="demo"\} 1(\.0)?$', re.M)
DEADLINE = 120.0  # seconds; only stops a start that never comes

# Run inside the image: what it holds.
CONTENTS = """
import importlib.util, json, os, shutil
import exporter, exporter.simulator
def tree(path):
    files = [os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs]
    return {"files": len(files), "bytes": sum(os.path.getsize(f) for f in files)}
package = os.path.dirname(exporter.__file__)
simulator = os.path.dirname(exporter.simulator.__file__)
faults = [os.path.join(d, f) for d, _, fs in os.walk(simulator) for f in fs
          if "faults" in os.path.relpath(os.path.join(d, f), simulator)]
print(json.dumps({
    "exporter": tree(package),
    "simulator": tree(simulator),
    "faults": {"files": len(faults), "bytes": sum(os.path.getsize(f) for f in faults)},
    "installed": tree(os.path.dirname(package)),
    "compilers": [t for t in ("gcc", "cc", "c++", "make", "ld") if shutil.which(t)],
    "test_code": [m for m in ("pytest", "tests", "hypothesis") if importlib.util.find_spec(m)],
}))
"""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def metrics(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return str(response.read().decode())
    except (urllib.error.URLError, OSError):
        return None


def until_served(port_of: Any, started: float) -> tuple[float, float]:
    """Seconds from ``started`` to the first 200 from /metrics, and to the first poll in it."""
    first = polled = 0.0
    while not polled:
        if time.perf_counter() - started > DEADLINE:
            raise SystemExit("the exporter did not serve its first poll in time")
        port = port_of()
        text = metrics(port) if port else None
        now = time.perf_counter() - started
        if text is not None:
            first = first or now
            if DEMO_UP.search(text):
                polled = now
        time.sleep(0.005)
    return first, polled


def container_start(engine: Engine, image: str) -> tuple[float, float]:
    name = engine.made("container", unique("pinpointe-bench"))
    started = time.perf_counter()
    engine.podman("run", "--detach", "--name", name, *HARDENED, image, "--demo")
    port = engine.published_port(name, 9863)
    try:
        return until_served(lambda: port, started)
    finally:
        engine.podman("rm", "--force", "--time", "0", name)


def process_start() -> tuple[float, float]:
    port = free_port()
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "exporter", "--demo", f"--web.listen-address=127.0.0.1:{port}"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        return until_served(lambda: port, started)
    finally:
        process.terminate()
        process.wait()


def layers(engine: Engine, image: str, base: str) -> list[dict[str, Any]]:
    """The layers the Dockerfile adds on top of the base, with the instructions behind them."""

    def history(name: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = json.loads(engine.podman("history", "--format=json", name))
        return found

    added = history(image)[: len(history(image)) - len(history(base))]
    return [
        {"size": entry["size"], "instruction": instruction(entry["CreatedBy"])}
        for entry in reversed(added)
    ]


def instruction(created_by: str) -> str:
    """A history entry as the Dockerfile wrote it (build arguments and the shell left out)."""
    text = re.sub(r"^\|\d+ (\S+=\S* )*", "", created_by)
    text = re.sub(r"^/bin/sh -c (#\(nop\) )?", lambda m: "" if m[1] else "RUN ", text)
    return re.sub(r"\s+", " ", text).strip()


def summary(s: list[float]) -> dict[str, float]:
    return {"median": statistics.median(s), "min": min(s), "max": max(s)}


def mb(value: float) -> str:
    return f"{value / 1e6:.1f} MB"


def files(tree: dict[str, int]) -> str:
    return f"{tree['files']} files, {tree['bytes'] / 1e3:,.1f} kB"


def report(results: dict[str, Any]) -> str:
    size, contents, start = results["size"], results["contents"], results["cold_start"]
    lines = [
        f"Image {mb(size['image'])}: base (stand-in) {mb(size['base'])}, "
        f"the Dockerfile's layers {mb(size['added'])}",
        "",
        "| layer | size |",
        "|---|---|",
        *(
            f"| `{layer['instruction'][:80]}` | {mb(layer['size'])} |"
            for layer in size["layers"]
            if layer["size"]
        ),
        "",
        f"installed packages {files(contents['installed'])}; the exporter's "
        f"{files(contents['exporter'])}; its simulator {files(contents['simulator'])}, of which "
        f"fault injection {files(contents['faults'])}; compilers: "
        f"{contents['compilers'] or 'none'}; test code: {contents['test_code'] or 'none'}",
        "",
        f"Cold start, {results['runs']} runs each (median, min-max):",
        "",
        "| | first 200 from /metrics | first poll in /metrics |",
        "|---|---|---|",
    ]
    for way in ("container", "process"):
        first, polled = start[way]["first_metrics"], start[way]["first_poll"]
        lines.append(
            f"| {way} | {first['median']:.2f} s ({first['min']:.2f}-{first['max']:.2f}) "
            f"| {polled['median']:.2f} s ({polled['min']:.2f}-{polled['max']:.2f}) |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    engine = Engine(engine_env())
    try:
        log("building the image (make image ENGINE=podman)")
        image = engine.build(unique("localhost/pinpointe-exporter-bench"))
        base = engine.inspect(base_image(), "image")
        built = engine.inspect(image, "image")
        contents = json.loads(
            engine.podman("run", "--rm", "--entrypoint=python", image, "-c", CONTENTS)
        )
        times: dict[str, list[tuple[float, float]]] = {"container": [], "process": []}
        for run in range(args.runs):
            log(f"cold start {run + 1}/{args.runs}")
            times["container"].append(container_start(engine, image))
            times["process"].append(process_start())
        results = {
            "machine": {"podman": engine.podman("--version").strip()},
            "runs": args.runs,
            "size": {
                "image": built["Size"],
                "base": base["Size"],
                "added": built["Size"] - base["Size"],
                "layers": layers(engine, image, base_image()),
            },
            "contents": contents,
            "cold_start": {
                way: {
                    "first_metrics": summary([t[0] for t in runs]),
                    "first_poll": summary([t[1] for t in runs]),
                }
                for way, runs in times.items()
            },
        }
    finally:
        engine.cleanup()
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "container.json").write_text(json.dumps(results, indent=2))
    print(report(results))


if __name__ == "__main__":
    main()
