"""The machinery of the end-to-end tests: real processes on 127.0.0.1, a frozen clock
for the simulator, receivers for Alertmanager's webhook and email, a Prometheus API
client, and time-scaled copies of the rule files (tests/test_e2e_alerting.py)."""

from __future__ import annotations

import email
import email.policy
import json
import math
import re
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from aiosmtpd.controller import Controller

TIMEOUT = 45.0
# one hour of the rules lasts 10 s in the end-to-end tests
TIME_SCALE = 360
DURATION = re.compile(r"(?:\d+(?:ms|[smhdwy]))+")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def eventually(check: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
    """Poll check() until it returns a truthy value; fail with its last error otherwise."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = check()
            if value:
                return value
            last = value
        except (AssertionError, requests.RequestException, KeyError, ValueError) as exc:
            last = exc
        if time.monotonic() > deadline:
            pytest.fail(f"never happened: {what}; last result: {last}")
        time.sleep(0.25)


class Clock:
    """The simulator's clock: frozen, moved only by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Process:
    def __init__(self, name: str, args: list[str], log: Path) -> None:
        self.name = name
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)

    def alive(self) -> None:
        if self.proc.poll() is not None:
            pytest.fail(f"{self.name} exited with {self.proc.returncode}:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Webhook:
    """Alertmanager's webhook receiver: records every notification it is sent."""

    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []
        lock = threading.Lock()
        self.lock = lock
        notifications = self.notifications

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length))
                with lock:
                    notifications.append(body)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/alerts"

    def alerts(self, alertname: str, status: str) -> list[dict[str, Any]]:
        with self.lock:
            return [
                alert
                for n in self.notifications
                for alert in n["alerts"]
                if alert["labels"].get("alertname") == alertname and alert["status"] == status
            ]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, expr: str) -> list[dict[str, Any]]:
        response = requests.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        body = response.json()
        assert body["status"] == "success", f"{expr}: {body}"
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def query_range(self, expr: str, start: float, end: float) -> list[dict[str, Any]]:
        """A range query with 1s steps whose last step is ``end`` (as Grafana's is "now")."""
        start = end - math.floor(end - start)
        response = requests.get(
            f"{self.url}/api/v1/query_range",
            params={"query": expr, "start": str(start), "end": str(end), "step": "1"},
            timeout=10,
        )
        body = response.json()
        assert body["status"] == "success", f"{expr}: {body}"
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def series(self, selector: str) -> list[dict[str, str]]:
        response = requests.get(
            f"{self.url}/api/v1/series", params={"match[]": selector}, timeout=10
        )
        body = response.json()
        assert body["status"] == "success", f"{selector}: {body}"
        result: list[dict[str, str]] = body["data"]
        return result

    def by_autoresponder(self, expr: str) -> dict[str, float]:
        return {s["metric"]["autoresponder_id"]: float(s["value"][1]) for s in self.query(expr)}

    def by_account(self, expr: str) -> dict[str, float]:
        return {s["metric"]["account"]: float(s["value"][1]) for s in self.query(expr)}


UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000,
            "w": 604_800_000, "y": 31_536_000_000}  # fmt: skip


def scaled(duration: str) -> str:
    """A duration divided by TIME_SCALE; a sub-second one (the subqueries' `offset 1ms`)
    stays."""
    total = sum(int(n) * UNITS_MS[u] for n, u in re.findall(r"(\d+)(ms|[smhdwy])", duration))
    return duration if total < 1000 else f"{total // TIME_SCALE}ms"


def scale_durations(expr: str) -> str:
    """Every window, subquery step and offset of a PromQL expression, scaled."""

    def window(match: re.Match[str]) -> str:
        return DURATION.sub(lambda m: scaled(m.group(0)), match.group(0))

    return re.sub(r"\[[^\]]*\]|offset\s+\w+", window, expr)


def scaled_rule_file(text: str, target: Path) -> Path:
    """A rule file whose windows, offsets and group intervals are scaled, with `for:`
    0s and no keep_firing_for: otherwise the shipped expressions."""
    doc = yaml.safe_load(text)
    for group in doc["groups"]:
        if "interval" in group:
            group["interval"] = scaled(group["interval"])
        for rule in group["rules"]:
            rule["expr"] = scale_durations(rule["expr"])
            if "for" in rule:
                rule["for"] = "0s"
            rule.pop("keep_firing_for", None)
    target.write_text(yaml.safe_dump(doc, sort_keys=False))
    return target


class SmtpSink:
    """An SMTP server on 127.0.0.1 that keeps every message Alertmanager delivers."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                message = email.message_from_bytes(envelope.content, policy=email.policy.default)
                assert isinstance(message, EmailMessage)
                with sink.lock:
                    sink.messages.append(message)
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=free_port())
        self.controller.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.controller.port}"

    def received(self, to: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if to in str(m["To"])]

    def stop(self) -> None:
        self.controller.stop()
