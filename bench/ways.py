"""The five ways of serving the same series, started and measured for one size."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.figures import BENCH, CLK_TCK, PAGE_SIZE, ROOT, WAYS, Cell, PollFigures, Results
from bench.measure import (
    GatedSimulator,
    cpu_ticks,
    free_port,
    get,
    log,
    loop_results,
    measure_cell,
    memory_mb,
    percentile,
    process_tree,
    start_loop,
    stop,
    wait_until,
)
from exporter.simulator import SimAccount


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
        )
        self.sim.start("127.0.0.1", 0)

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
