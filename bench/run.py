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
import math
import os
import platform
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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exporter.simulator import SimAccount, Simulator  # noqa: E402

BENCH = Path(__file__).resolve().parent
WAYS = ("exporter", "client_python", "client_python_cached", "pushgateway", "nginx")
SLOW_SCRAPE = 0.5  # seconds; slower ways are measured with a Python loop instead of wrk
CELL_BUDGET = 60.0  # seconds; an 8-scraper cell estimated to take longer is not run
PAGE_SIZE = 100
CLK_TCK = os.sysconf("SC_CLK_TCK")
WRK_SCRIPT = """
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout + summary.errors.status
  io.write(string.format("BENCH %d %d %d %d %d\\n", summary.requests,
    latency:percentile(50), latency:percentile(99), errors, summary.bytes))
end
"""


@dataclass
class Cell:
    way: str
    size: int
    gzip: bool
    scrapers: int
    p50: float | None = None  # seconds
    p99: float | None = None
    requests: int = 0
    tool: str = ""
    skipped: str = ""
    body_bytes: int = 0  # the body one scrape receives


@dataclass
class PollFigures:
    size: int
    samples: int = 0
    wall: float = 0.0
    cpu: float = 0.0
    rss_mb: float = 0.0
    peak_rss_mb: float = 0.0
    idle_p50: float = 0.0
    idle_p99: float = 0.0
    during_p50: float = 0.0
    during_p99: float = 0.0
    during_requests: int = 0
    plain_mb: float = 0.0
    gzip_mb: float = 0.0


@dataclass
class Results:
    machine: dict[str, str]
    cells: list[Cell] = field(default_factory=list)
    polls: list[PollFigures] = field(default_factory=list)
    rss_mb: dict[str, dict[str, float]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


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


# -- the four ways ----------------------------------------------------------------------------
class Bench:
    def __init__(
        self, size: int, workdir: Path, seconds: int, results: Results, ways: list[str]
    ) -> None:
        self.ways = ways
        self.size = size
        self.workdir = workdir
        self.seconds = seconds
        self.results = results
        self.processes: dict[str, subprocess.Popen[Any]] = {}
        self.urls: dict[str, str] = {}
        self.sim = GatedSimulator(
            [
                SimAccount(username="bench", token="bench-token", autoresponders=size),
                SimAccount(username="peer", token="peer-token", autoresponders=size),
            ],
            gated="bench",
        ).start("127.0.0.1", 0)

    def close(self) -> None:
        # The gate stays shut: a poll waiting at it just goes away with the exporter.
        for process in self.processes.values():
            stop(process)
        self.sim.stop()

    def start_exporter(self) -> None:
        config = self.workdir / "exporter.yaml"
        config.write_text(
            json.dumps(
                {
                    "poll_interval": "2s",
                    "timeout": "30m",
                    "stale_after": "24h",
                    # The default (64MiB) stops at about 38,000 autoresponders an account
                    # (bench/exposition_bound.py); the 50,000 row needs more.
                    "max_exposition_size": "256MiB",
                    "accounts": [
                        {
                            "name": "bench",
                            "api_url": self.sim.url,
                            "username": "bench",
                            "usertoken": "bench-token",
                            "groupings": ["autoresponder"],
                            "page_size": PAGE_SIZE,
                        }
                    ],
                }
            )
        )
        port = free_port()
        log_file = (self.workdir / "exporter.log").open("wb")
        self.processes["exporter"] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "exporter",
                f"--config.file={config}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.format=json",
            ],
            cwd=ROOT,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        self.urls["exporter"] = f"http://127.0.0.1:{port}/metrics"
        wait_until(
            lambda: get(f"http://127.0.0.1:{port}/-/ready")[0] == 200,
            600,
            "the exporter's first poll",
            0.2,
        )
        self.settle(self.processes["exporter"].pid)

    def settle(self, pid: int, quiet: float = 0.5) -> float:
        """Wait until the process has used no CPU for ``quiet`` seconds; when it last did."""
        last, last_change = cpu_ticks(pid), time.monotonic()
        while time.monotonic() - last_change < quiet:
            time.sleep(0.01)
            ticks = cpu_ticks(pid)
            if ticks != last:
                last, last_change = ticks, time.monotonic()
        return last_change

    def start_client_python(self, way: str) -> None:
        port = free_port()
        process = subprocess.Popen(
            [
                sys.executable,
                str(BENCH / "client_python_peer.py"),
                f"--api={self.sim.url}",
                "--username=peer",
                "--token=peer-token",
                f"--port={port}",
                *(["--cached"] if way == "client_python_cached" else []),
            ],
            stdout=subprocess.PIPE,
            stderr=(self.workdir / f"{way}.log").open("wb"),
            text=True,
        )
        self.processes[way] = process
        assert process.stdout is not None
        if process.stdout.readline().strip() != "serving":
            raise RuntimeError(f"the prometheus_client peer ({way}) did not start")
        self.urls[way] = f"http://127.0.0.1:{port}/metrics"

    def start_pushgateway(self, exposition: bytes) -> None:
        binary = shutil.which("prometheus-pushgateway")
        if binary is None:
            self.results.skipped["pushgateway"] = "prometheus-pushgateway not installed"
            return
        port = free_port()
        self.processes["pushgateway"] = subprocess.Popen(
            [
                binary,
                f"--web.listen-address=127.0.0.1:{port}",
                f"--persistence.file={self.workdir / 'pushgateway.db'}",
                "--persistence.interval=24h",
                "--log.level=warn",
            ],
            stderr=(self.workdir / "pushgateway.log").open("wb"),
        )
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: get(base + "/-/ready")[0] == 200, 30, "the pushgateway")
        ours = _pinpointe_families(exposition)
        request = urllib.request.Request(base + "/metrics/job/pinpointe", data=ours, method="PUT")
        with urllib.request.urlopen(request, timeout=600) as response:
            if response.status not in (200, 202):
                raise RuntimeError(f"push answered {response.status}")
        self.urls["pushgateway"] = base + "/metrics"

    def start_nginx(self, plain: bytes, gzipped: bytes) -> None:
        binary = shutil.which("nginx") or (
            "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
        )
        if binary is None:
            self.results.skipped["nginx"] = "nginx not installed"
            return
        www = self.workdir / "www"
        www.mkdir(exist_ok=True)
        (www / "metrics").write_bytes(plain)
        (www / "metrics.gz").write_bytes(gzipped)
        for path in (self.workdir, www, www / "metrics", www / "metrics.gz"):
            path.chmod(0o755)
        port = free_port()
        user = "user root root;" if os.geteuid() == 0 else ""
        conf = self.workdir / "nginx.conf"
        conf.write_text(
            f"""{user}
worker_processes 1;
daemon off;
pid {self.workdir}/nginx.pid;
error_log {self.workdir}/nginx-error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {self.workdir}/client_body;
  proxy_temp_path {self.workdir}/proxy;
  fastcgi_temp_path {self.workdir}/fastcgi;
  uwsgi_temp_path {self.workdir}/uwsgi;
  scgi_temp_path {self.workdir}/scgi;
  default_type "text/plain; version=0.0.4; charset=utf-8";
  sendfile on;
  server {{
    listen 127.0.0.1:{port};
    root {www};
    location = /metrics {{ gzip_static on; }}
  }}
}}
"""
        )
        self.processes["nginx"] = subprocess.Popen(
            [
                binary,
                "-p",
                str(self.workdir),
                "-c",
                str(conf),
                "-e",
                f"{self.workdir}/nginx-error.log",
            ]
        )
        url = f"http://127.0.0.1:{port}/metrics"
        wait_until(lambda: get(url)[0] == 200, 30, "nginx")
        self.urls["nginx"] = url

    # -- runs ---------------------------------------------------------------------------
    def run(self) -> None:
        log(f"N={self.size}: starting the exporter (first poll)")
        self.start_exporter()
        exporter_pid = self.processes["exporter"].pid
        _, _, plain = get(self.urls["exporter"])
        _, headers, gzipped = get(self.urls["exporter"], gzip=True)
        assert headers.get("Content-Encoding") == "gzip"
        poll = PollFigures(
            size=self.size,
            samples=sum(
                1 for line in plain.splitlines() if line.startswith(b"pinpointe_autoresponder_")
            ),
            plain_mb=len(plain) / 1e6,
            gzip_mb=len(gzipped) / 1e6,
        )
        log(f"N={self.size}: {poll.samples} engagement samples, starting the peers")
        for way in ("client_python", "client_python_cached"):
            if way in self.ways:
                self.start_client_python(way)
        if "pushgateway" in self.ways:
            self.start_pushgateway(plain)
        if "nginx" in self.ways:
            self.start_nginx(plain, gzipped)
        self.check_same_series(plain)
        self.results.rss_mb[str(self.size)] = {
            way: round(sum(memory_mb(p) for p in process_tree(proc.pid)), 1)
            for way, proc in self.processes.items()
        }

        ways = [way for way in WAYS if way in self.ways]
        for way in ways:
            if way not in self.urls:
                for gzip in (False, True):
                    for scrapers in (1, 8):
                        self.results.cells.append(
                            Cell(way, self.size, gzip, scrapers, skipped=self.results.skipped[way])
                        )
        # Side by side: each cell is measured for every way in turn.
        for gzip in (False, True):
            single: dict[str, tuple[float, int]] = {}
            for way in ways:
                if way in self.urls:
                    started = time.monotonic()
                    _, _, body = get(self.urls[way], gzip=gzip)
                    single[way] = (time.monotonic() - started, len(body))
            for scrapers in (1, 8):
                for way, (seconds, body_bytes) in single.items():
                    cell = Cell(way, self.size, gzip, scrapers, body_bytes=body_bytes)
                    log(f"N={self.size}: {way} gzip={gzip} scrapers={scrapers}")
                    measure_cell(cell, self.urls[way], self.seconds, seconds)
                    self.results.cells.append(cell)
        self.measure_polls(exporter_pid, poll)
        self.results.polls.append(poll)

    def check_same_series(self, plain: bytes) -> None:
        ours = _engagement_lines(plain)
        for way in WAYS[1:]:
            if way in self.urls:
                theirs = _engagement_lines(get(self.urls[way])[2])
                if len(theirs) != len(ours):
                    raise RuntimeError(f"{way} serves {len(theirs)} samples, exporter {len(ours)}")

    def polls_logged(self) -> int:
        return (self.workdir / "exporter.log").read_text().count('"poll succeeded"')

    def one_poll(self) -> tuple[float, float]:
        """Let the waiting poll run; (time the gate opened, time the poll was published)."""
        wait_until(lambda: self.sim.waiting > 0, 60, "the next poll to wait at the gate")
        logged = self.polls_logged()
        opened = time.monotonic()
        self.sim.gate.set()
        wait_until(lambda: self.polls_logged() > logged, 600, "the poll", 0.005)
        return opened, time.monotonic()

    def measure_polls(self, pid: int, poll: PollFigures) -> None:
        # One poll with nothing else going on: wall time, CPU seconds, memory.
        log(f"N={self.size}: measuring one poll")
        wait_until(lambda: self.sim.waiting > 0, 60, "the next poll to wait at the gate")
        self.settle(pid)
        ticks = cpu_ticks(pid)
        opened, published = self.one_poll()
        self.settle(pid)
        poll.wall = published - opened
        poll.cpu = (cpu_ticks(pid) - ticks) / CLK_TCK
        poll.rss_mb = memory_mb(pid)
        poll.peak_rss_mb = memory_mb(pid, "VmHWM")

        # Scrape latency (gzip, one scraper) idle, then while a poll runs.
        log(f"N={self.size}: scrape latency idle and during a poll")
        wait_until(lambda: self.sim.waiting > 0, 60, "the next poll to wait at the gate")
        self.settle(pid)
        idle = [
            end - start
            for start, end in loop_results(start_loop(self.urls["exporter"], True, 1, 3, 1))
        ]
        loop = start_loop(self.urls["exporter"], True, 1, 3600, 1)
        assert loop.stdout is not None
        first = loop.stdout.readline()  # the loop is scraping before the poll starts
        opened, published = self.one_poll()
        loop.terminate()
        during = [
            end - start
            for start, end in loop_results(loop, first)
            if start >= opened and end <= published
        ]
        poll.idle_p50, poll.idle_p99 = statistics.median(idle), percentile(idle, 99)
        if during:
            poll.during_p50, poll.during_p99 = statistics.median(during), percentile(during, 99)
        poll.during_requests = len(during)


def _engagement_lines(text: bytes) -> list[bytes]:
    return [line for line in text.splitlines() if line.startswith(b"pinpointe_autoresponder_")]


def _pinpointe_families(text: bytes) -> bytes:
    """The pinpointe_* families of an exposition (the Pushgateway has its own process_*)."""
    kept = []
    for line in text.splitlines(keepends=True):
        name = line.split(b" ", 3)[2] if line.startswith(b"# ") else line
        if name.startswith(b"pinpointe_"):
            kept.append(line)
    return b"".join(kept)


# -- report ---------------------------------------------------------------------------------
def ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1000:.3g} ms"


def ratio(value: float | None, reference: float | None) -> str:
    if value is None or not reference:
        return ""
    r = value / reference
    return f"{r:,.0f}x" if r >= 10 else f"{r:.2g}x"


def cell_text(cell: Cell, reference: Cell | None) -> str:
    if cell.skipped:
        return cell.skipped
    ref50 = reference.p50 if reference else None
    ref99 = reference.p99 if reference else None
    text = f"{ms(cell.p50)} / {ms(cell.p99)}"
    if reference is not None and cell is not reference:
        text += f" ({ratio(cell.p50, ref50)} / {ratio(cell.p99, ref99)})"
    if cell.tool == "python":
        text += f" [n={cell.requests}]"
    return text


def markdown(results: Results) -> str:
    cells = {(c.way, c.size, c.gzip, c.scrapers): c for c in results.cells}
    sizes = sorted({c.size for c in results.cells})
    samples = {p.size: p.samples for p in results.polls}
    lines = [
        "Scrape latency p50 / p99 (in brackets: that way's figure divided by the exporter's in "
        "the same row, above 1x the exporter is faster; [n=] scrapes measured with a Python "
        "loop instead of wrk)",
        "",
        "| autoresponders (samples) | gzip | scrapers | " + " | ".join(WAYS) + " |",
        "|---|---|---|" + "---|" * len(WAYS),
    ]
    for size in sizes:
        for gzip in (True, False):
            for scrapers in (1, 8):
                reference = cells.get(("exporter", size, gzip, scrapers))
                row = [
                    f"{size:,} ({samples.get(size, 0):,})",
                    "yes" if gzip else "no",
                    str(scrapers),
                ]
                for way in WAYS:
                    cell = cells.get((way, size, gzip, scrapers))
                    row.append(cell_text(cell, reference) if cell else "-")
                lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        "The exporter's poll (page size 100, loopback simulator) and scrape latency "
        "(gzip, 1 scraper) idle and while a poll runs",
        "",
        "| autoresponders | exposition plain / gzip | poll wall time | CPU per poll | RSS after "
        "poll / peak | scrape p50 / p99 idle | during a poll (n) |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in results.polls:
        lines.append(
            f"| {p.size:,} | {p.plain_mb:.1f} MB / {p.gzip_mb:.2f} MB | {p.wall:.2f} s "
            f"| {p.cpu:.2f} s | {p.rss_mb:.0f} MB / {p.peak_rss_mb:.0f} MB "
            f"| {ms(p.idle_p50)} / {ms(p.idle_p99)} "
            f"| {ms(p.during_p50)} / {ms(p.during_p99)} ({p.during_requests}) |"
        )
    lines += ["", "Body of one scrape, gzip / plain (each way compresses its own way)", ""]
    lines.append("| autoresponders | " + " | ".join(WAYS) + " |")
    lines.append("|---|" + "---|" * len(WAYS))
    for size in sizes:
        row = []
        for way in WAYS:
            zipped, plain = cells.get((way, size, True, 1)), cells.get((way, size, False, 1))
            if zipped and plain and zipped.body_bytes and plain.body_bytes:
                row.append(f"{zipped.body_bytes / 1e6:.2f} / {plain.body_bytes / 1e6:.1f} MB")
            else:
                row.append("-")
        lines.append(f"| {size:,} | " + " | ".join(row) + " |")
    lines += ["", "Resident memory after loading, MB", ""]
    lines.append("| autoresponders | " + " | ".join(WAYS) + " |")
    lines.append("|---|" + "---|" * len(WAYS))
    for size in sizes:
        rss = results.rss_mb.get(str(size), {})
        lines.append(
            f"| {size:,} | " + " | ".join(f"{rss[w]:.0f}" if w in rss else "-" for w in WAYS) + " |"
        )
    for way, why in sorted(results.skipped.items()):
        lines.append(f"\nSkipped: {way}: {why}")
    return "\n".join(lines) + "\n"


def targets(results: Results) -> list[tuple[str, bool | None, str]]:
    cells = {(c.way, c.size, c.gzip, c.scrapers): c for c in results.cells}
    polls = {p.size: p for p in results.polls}
    checks: list[tuple[str, bool | None, str]] = []
    ours = cells.get(("exporter", 10_000, True, 1))
    for way, want in (("client_python", 300.0), ("pushgateway", 300.0)):
        theirs = cells.get((way, 10_000, True, 1))
        if ours and ours.p50 and theirs and theirs.p50:
            r = theirs.p50 / ours.p50
            checks.append(
                (f"10,000: gzip p50 >= {want:.0f}x faster than {way}", r >= want, f"{r:,.0f}x")
            )
        else:
            checks.append(
                (f"10,000: gzip p50 >= {want:.0f}x faster than {way}", None, "not measured")
            )
    nginx = cells.get(("nginx", 10_000, True, 1))
    if ours and ours.p50 and nginx and nginx.p50:
        r = ours.p50 / nginx.p50
        checks.append(("10,000: gzip p50 within 3x of nginx", r <= 3, f"{r:.1f}x"))
    else:
        checks.append(("10,000: gzip p50 within 3x of nginx", None, "not measured"))
    cached = cells.get(("client_python_cached", 10_000, True, 1))
    if ours and ours.p50 and cached and cached.p50:
        r = cached.p50 / ours.p50
        checks.append(("10,000: gzip p50 of client_python_cached / exporter", None, f"{r:.1f}x"))
    big = polls.get(50_000)
    if big:
        checks.append(
            ("50,000: peak RSS <= 300 MB", big.peak_rss_mb <= 300, f"{big.peak_rss_mb:.0f} MB")
        )
        checks.append(("50,000: CPU per poll <= 5 s", big.cpu <= 5, f"{big.cpu:.2f} s"))
    for p in results.polls:
        if p.during_p50 and p.idle_p50:
            r = p.during_p50 / p.idle_p50
            checks.append((f"{p.size:,}: scrape p50 during a poll vs idle", None, f"{r:.1f}x"))
    return checks


def plot(results: Results, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib not installed (pip install -e '.[bench]'): no plot")
        return False
    figure, axes = plt.subplots(figsize=(7, 4.2), dpi=100)
    styles = {
        "exporter": "o-",
        "client_python": "s-",
        "client_python_cached": "v-",
        "pushgateway": "^-",
        "nginx": "D-",
    }
    for way in WAYS:
        for gzip, dashes in ((True, "-"), (False, ":")):
            points = sorted(
                (c.size, c.p50)
                for c in results.cells
                if c.way == way and c.gzip == gzip and c.scrapers == 1 and c.p50
            )
            if points:
                axes.plot(
                    [x for x, _ in points],
                    [y * 1000 for _, y in points],
                    styles[way][0] + dashes,
                    label=f"{way} ({'gzip' if gzip else 'plain'})",
                    color={
                        "exporter": "C0",
                        "client_python": "C1",
                        "client_python_cached": "C4",
                        "pushgateway": "C2",
                        "nginx": "C3",
                    }[way],
                )
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("autoresponders (about 11 samples each)")
    axes.set_ylabel("scrape latency p50, ms (1 scraper)")
    axes.set_title("Scrape latency: pinpointe-exporter and the alternatives")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return True


def machine() -> dict[str, str]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    versions = {}
    for tool, command in (
        ("wrk", ["wrk", "--version"]),
        ("nginx", ["nginx", "-v"]),
        ("pushgateway", ["prometheus-pushgateway", "--version"]),
    ):
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=10)
            versions[tool] = (done.stdout + done.stderr).strip().splitlines()[0]
        except (OSError, IndexError):
            versions[tool] = "not installed"
    import prometheus_client

    return {
        "cpu": f"{os.cpu_count()} x {model}",
        "memory": f"{int(memory) // 1024} MB",
        "os": platform.platform(),
        "python": platform.python_version(),
        "prometheus_client": getattr(prometheus_client, "__version__", "")
        or _dist_version("prometheus-client"),
        **versions,
    }


def _load() -> str:
    """Load average (1, 5, 15 minutes): what else the machine was running."""
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


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
