"""How the benchmark measures: processes and their resources, the gated simulator, and
scrape latency with wrk or a Python loop."""

from __future__ import annotations

import math
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.figures import BENCH, CELL_BUDGET, WRK_SCRIPT, Cell
from exporter.simulator import SimAccount, Simulator


# -- helpers ---------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def get(url: str, gzip: bool = False, timeout: float = 600) -> tuple[int, dict[str, str], bytes]:
    headers = {"Accept-Encoding": "gzip"} if gzip else {}
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, dict(response.headers), response.read()


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(interval)
    raise RuntimeError(f"timed out waiting for {what}")


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime


def memory_mb(pid: int, key: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def process_tree(pid: int) -> list[int]:
    pids = [pid]
    for task in Path("/proc").iterdir():
        if task.name.isdigit():
            try:
                if int(task.joinpath("stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    pids.append(int(task.name))
            except OSError:
                continue
    return pids


def stop(process: subprocess.Popen[Any] | None) -> None:
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


# -- the simulator behind a gate ----------------------------------------------------------------
class GatedSimulator(Simulator):
    """Holds the gated account's requests while the gate is shut; shuts it after a last page."""

    def __init__(self, accounts: list[SimAccount], gated: str) -> None:
        super().__init__(accounts)
        self.gated = gated
        self.gate = threading.Event()
        self.gate.set()
        self.waiting = 0
        self.polls_done = 0
        self._gate_lock = threading.Lock()

    def answer(self, request: Any) -> tuple[int, dict[str, Any]]:
        if not (isinstance(request, dict) and request.get("username") == self.gated):
            return super().answer(request)
        with self._gate_lock:
            self.waiting += 1
        self.gate.wait()
        with self._gate_lock:
            self.waiting -= 1
        status, body = super().answer(request)
        if status == 200 and not (body.get("pagination") or {}).get("next"):
            self.gate.clear()
            with self._gate_lock:
                self.polls_done += 1
        return status, body


# -- measuring ------------------------------------------------------------------------------------
def measure_wrk(
    url: str, gzip: bool, scrapers: int, seconds: int, body_bytes: int
) -> tuple[float, float, int]:
    """p50, p99 (seconds) and request count; fails unless every response was that body."""
    script = Path(tempfile.gettempdir()) / "pinpointe-bench-wrk.lua"
    script.write_text(WRK_SCRIPT)
    command = [
        "wrk",
        f"-t{min(2, scrapers)}",
        f"-c{scrapers}",
        f"-d{seconds}s",
        "--timeout",
        "120s",
        "-s",
        str(script),
    ]
    if gzip:
        command += ["-H", "Accept-Encoding: gzip"]
    output = subprocess.run(
        [*command, url], capture_output=True, text=True, timeout=seconds + 180, check=True
    ).stdout
    line = next(x for x in output.splitlines() if x.startswith("BENCH "))
    requests, p50, p99, errors, received = (int(x) for x in line.split()[1:])
    if errors or not requests:
        raise RuntimeError(f"wrk against {url}: {requests} requests, {errors} errors")
    # Headers add a few hundred bytes a response, and the responses still in flight when
    # wrk stops (one a connection at most) count in the bytes but not in the requests.
    if not body_bytes * requests <= received <= (body_bytes + 1024) * (requests + scrapers):
        raise RuntimeError(
            f"wrk against {url} received {received} bytes in {requests} responses, "
            f"the body is {body_bytes} bytes: it measured something else"
        )
    return p50 / 1e6, p99 / 1e6, requests


def start_loop(url: str, gzip: bool, scrapers: int, seconds: float, minimum: int) -> Any:
    command = [
        sys.executable,
        str(BENCH / "scrape_loop.py"),
        url,
        f"--concurrency={scrapers}",
        f"--seconds={seconds}",
        f"--min-requests={minimum}",
    ]
    if gzip:
        command.append("--gzip")
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def loop_results(process: subprocess.Popen[str], first: str = "") -> list[tuple[float, float]]:
    output, _ = process.communicate()
    output = first + output
    results = []
    for line in output.splitlines():
        start, end, status, _ = line.split()
        if status != "200":
            raise RuntimeError(f"a scrape answered {status}")
        results.append((float(start), float(end)))
    return results


def measure_cell(cell: Cell, url: str, seconds: int, single: float) -> None:
    """Fill in one cell; ``single`` is the latency of one scrape measured beforehand.

    wrk counts only the scrapes that finish within its duration, so it is used when every
    connection can finish several; slower ways get a Python loop that waits for its scrapes.
    """
    estimate = single * cell.scrapers  # one scrape per scraper, served one after the other
    if shutil.which("wrk") and estimate * 5 <= seconds:
        cell.p50, cell.p99, cell.requests = measure_wrk(
            url, cell.gzip, cell.scrapers, seconds, cell.body_bytes
        )
        cell.tool = "wrk"
        return
    if cell.scrapers > 1 and estimate > CELL_BUDGET:
        cell.skipped = (
            f"not run: 1 scrape takes {single:.1f} s, {cell.scrapers} at once ~{estimate:.0f} s"
        )
        return
    if cell.scrapers > 1:
        loop = start_loop(url, cell.gzip, cell.scrapers, seconds, 1)
    else:
        loop = start_loop(url, cell.gzip, 1, 0, min(20, max(3, int(3 * seconds / single))))
    latencies = [end - start for start, end in loop_results(loop)]
    cell.p50, cell.p99 = statistics.median(latencies), percentile(latencies, 99)
    cell.requests = len(latencies)
    cell.tool = "python"
