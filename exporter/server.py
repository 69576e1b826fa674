"""The HTTP side: /metrics, the landing page and the health endpoints.

A scrape writes bytes that were rendered when the data last changed; the only work
done per scrape is the client library's few process metrics.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from exporter import __version__
from exporter.metrics import (
    OPENMETRICS_CONTENT_TYPE,
    TEXT_CONTENT_TYPE,
    runtime_metrics,
)
from exporter.state import Store

log = logging.getLogger("exporter.server")

# Checks a request before it is served; returns None to serve it, or (status, headers).
RequestGuard = Callable[[BaseHTTPRequestHandler], tuple[int, dict[str, str]] | None]


def parse_listen_address(address: str) -> tuple[str, int]:
    """``:9863``, ``127.0.0.1:9863`` or ``[::1]:9863`` -> (host, port)."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"invalid listen address {address!r}: use host:port, e.g. :9863")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port_text)


def accepts(header: str | None, wanted: str) -> bool:
    """True if an Accept or Accept-Encoding header lists ``wanted`` with a non-zero q."""
    for item in (header or "").split(","):
        media, _, params = item.strip().partition(";")
        if media.strip().lower() != wanted:
            continue
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip() == "q":
                try:
                    return float(value) > 0
                except ValueError:
                    return False
        return True
    return False


class ExporterServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        store: Store,
        telemetry_path: str = "/metrics",
        guard: RequestGuard | None = None,
    ) -> None:
        host, _ = address
        self.dual_stack = host == "" and socket.has_dualstack_ipv6()
        if self.dual_stack or ":" in host:
            self.address_family = socket.AF_INET6
        self.store = store
        self.telemetry_path = telemetry_path
        self.guard = guard
        super().__init__(("::" if self.dual_stack else host, address[1]), _Handler)

    def server_bind(self) -> None:
        if self.dual_stack:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()

    def start_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, args=(0.1,), name="http", daemon=True)
        thread.start()
        return thread


_LANDING = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Pinpointe exporter</title></head>
<body>
<h1>Pinpointe exporter</h1>
<p>Version {version}. Prometheus exporter for Pinpointe autoresponder results.</p>
<ul>
<li><a href="{metrics}">Metrics</a></li>
<li><a href="/-/healthy">Health</a></li>
<li><a href="/-/ready">Readiness</a></li>
</ul>
</body></html>
"""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = f"pinpointe-exporter/{__version__}"
    sys_version = ""
    timeout = 60
    disable_nagle_algorithm = True
    server: ExporterServer

    def do_GET(self) -> None:
        self._dispatch(head=False)

    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    def _not_allowed(self) -> None:
        self._send(
            405, b"method not allowed\n", "text/plain; charset=utf-8", {"Allow": "GET, HEAD"}
        )

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _not_allowed

    def _dispatch(self, head: bool) -> None:
        self._head = head
        path = self.path.split("?", 1)[0]
        if self.server.guard is not None:
            refusal = self.server.guard(self)
            if refusal is not None:
                status, headers = refusal
                self._send(status, b"unauthorized\n", "text/plain; charset=utf-8", headers)
                return
        if path == self.server.telemetry_path:
            self._metrics()
        elif path == "/":
            page = _LANDING.format(version=__version__, metrics=self.server.telemetry_path)
            self._send(200, page.encode(), "text/html; charset=utf-8")
        elif path == "/-/healthy":
            self._send(200, b"Healthy\n", "text/plain; charset=utf-8")
        elif path == "/-/ready":
            pending = self.server.store.pending()
            if pending:
                text = "Not ready: waiting for the first poll of " + ", ".join(pending) + "\n"
                self._send(503, text.encode(), "text/plain; charset=utf-8")
            else:
                self._send(200, b"Ready\n", "text/plain; charset=utf-8")
        else:
            self._send(404, b"not found\n", "text/plain; charset=utf-8")

    def _metrics(self) -> None:
        openmetrics = accepts(self.headers.get("Accept"), "application/openmetrics-text")
        content_type = OPENMETRICS_CONTENT_TYPE if openmetrics else TEXT_CONTENT_TYPE
        exposition = self.server.store.exposition
        runtime = runtime_metrics(openmetrics)
        headers = {"Vary": "Accept, Accept-Encoding"}
        if accepts(self.headers.get("Accept-Encoding"), "gzip"):
            parts = exposition.gzipped(openmetrics, runtime)
            headers["Content-Encoding"] = "gzip"
        else:
            parts = [*exposition.parts(openmetrics), runtime]
        self._send_parts(200, parts, content_type, headers)

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self._send_parts(status, [body], content_type, headers or {})

    def _send_parts(
        self, status: int, parts: list[bytes], content_type: str, headers: dict[str, str]
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(sum(len(part) for part in parts)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if getattr(self, "_head", False) or self.command == "HEAD":
            return
        try:
            for part in parts:
                self.wfile.write(part)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format % args, extra={"fields": {"client": self.client_address[0]}})
