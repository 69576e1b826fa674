"""The HTTP side: /metrics, the landing page and the health endpoints.

A scrape writes bytes that were rendered when the data last changed; the only work
done per scrape is the client library's few process metrics.

Every connection has its own thread, and the TLS handshake happens in that thread,
not in the accept loop, so a slow or stalled client (plain or TLS) holds only its own
thread until its timeout. Requests are bounded: a request line of at most 8 KiB and
headers of at most 32 KiB (431 beyond); any method other than GET and HEAD gets 405.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import socket
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from exporter import __version__
from exporter.metrics import (
    OPENMETRICS_CONTENT_TYPE,
    TEXT_CONTENT_TYPE,
)
from exporter.runtime import runtime_metrics
from exporter.state import Store

if TYPE_CHECKING:
    from exporter.webconfig import WebConfig

log = logging.getLogger("exporter.server")

MAX_REQUEST_LINE = 8 * 1024
MAX_HEADER_BYTES = 32 * 1024
HANDSHAKE_TIMEOUT = 10.0
IDLE_TIMEOUT = 30.0
LINGER_SECONDS = 2.0
LINGER_BYTES = 1024 * 1024

# Checks a request before it is served; returns None to serve it, or (status, headers).
RequestGuard = Callable[[BaseHTTPRequestHandler], tuple[int, dict[str, str]] | None]


@dataclass(frozen=True)
class Reply:
    """What a route answers."""

    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    """An endpoint served beside /metrics and the health checks (the status page, the
    lifecycle API): the methods it answers (HEAD goes with GET) and its handler, called
    with the method after basic auth passed."""

    methods: tuple[str, ...]
    handle: Callable[[str], Reply]


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
        web: WebConfig | None = None,
        routes: Mapping[str, Route] | None = None,
    ) -> None:
        host, _ = address
        self.dual_stack = host == "" and socket.has_dualstack_ipv6()
        if self.dual_stack or ":" in host:
            self.address_family = socket.AF_INET6
        self.store = store
        self.telemetry_path = telemetry_path
        self.web = web
        self.routes = dict(routes or {})
        self.guard = guard if guard is not None or web is None else web.guard
        super().__init__(("::" if self.dual_stack else host, address[1]), _Handler)

    def server_bind(self) -> None:
        if self.dual_stack:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Runs in the connection's own thread: the TLS handshake happens here."""
        if self.web is not None:
            self.web.refresh()
        context = self.web.ssl_context if self.web is not None else None
        if context is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(HANDSHAKE_TIMEOUT)
        try:
            connection = context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.debug(
                "TLS handshake failed",
                extra={"fields": {"client": client_address[0], "error": str(exc)}},
            )
            return
        try:
            if self.web is not None and not self.web.peer_allowed(connection):
                log.debug(
                    "client certificate names none of client_allowed_sans",
                    extra={"fields": {"client": client_address[0]}},
                )
                return
            self.RequestHandlerClass(connection, client_address, self)  # type: ignore[arg-type]
        finally:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()

    def shutdown_request(self, request: Any) -> None:
        """Close a plain connection gracefully: FIN first, then read what the client was
        still sending (up to LINGER_BYTES, for at most LINGER_SECONDS), so that closing
        with unread data does not reset the connection before the client has read our
        answer (a 405 or 431 sent before the request was fully read)."""
        with contextlib.suppress(OSError):
            request.shutdown(socket.SHUT_WR)
            request.settimeout(LINGER_SECONDS)
            drained = 0
            while drained < LINGER_BYTES:
                chunk = request.recv(65536)
                if not chunk:
                    break
                drained += len(chunk)
        self.close_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that vanished mid-request is no news: one debug line, not a traceback."""
        log.debug(
            "connection ended with an error",
            exc_info=True,
            extra={"fields": {"client": client_address[0] if client_address else ""}},
        )

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

    def version_string(self) -> str:
        return self.server_version

    timeout = IDLE_TIMEOUT
    disable_nagle_algorithm = True
    server: ExporterServer

    def handle_one_request(self) -> None:
        # As BaseHTTPRequestHandler's, with a smaller request line limit and a header budget.
        try:
            self.raw_requestline = self.rfile.readline(MAX_REQUEST_LINE + 1)
            if len(self.raw_requestline) > MAX_REQUEST_LINE:
                self.requestline = self.request_version = self.command = ""
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            body = self.rfile
            self.rfile = _HeaderBudget(body, MAX_HEADER_BYTES)  # type: ignore[assignment]
            try:
                parsed = self.parse_request()
            finally:
                self.rfile = body
            if not parsed:
                return
            method = getattr(self, "do_" + self.command, None)
            if method is None:
                self._not_allowed()
            else:
                method()
            self.wfile.flush()
        except TimeoutError:
            self.close_connection = True

    def do_GET(self) -> None:
        self._dispatch()

    do_HEAD = do_GET

    def _not_allowed(self) -> None:
        self.close_connection = True  # a body may follow that we do not read
        self._send(
            405, b"method not allowed\n", "text/plain; charset=utf-8", {"Allow": "GET, HEAD"}
        )

    def _write_method(self) -> None:
        route = self.server.routes.get(self.path.split("?", 1)[0])
        if route is None or self.command not in route.methods:
            self._not_allowed()
            return
        self.close_connection = True  # a body may follow that we do not read
        self._dispatch()

    do_POST = do_PUT = _write_method
    do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _not_allowed

    def _dispatch(self) -> None:
        path = self.path.split("?", 1)[0]
        if self.server.guard is not None:
            refusal = self.server.guard(self)
            if refusal is not None:
                status, headers = refusal
                reply = f"{HTTPStatus(status).phrase}\n".encode()
                self._send(status, reply, "text/plain; charset=utf-8", headers)
                return
        route = self.server.routes.get(path)
        if route is not None:
            method = "GET" if self.command == "HEAD" else self.command
            if method not in route.methods:
                allowed = ", ".join(
                    name for m in route.methods for name in ((m, "HEAD") if m == "GET" else (m,))
                )
                self._send(
                    405, b"method not allowed\n", "text/plain; charset=utf-8", {"Allow": allowed}
                )
                return
            answer = route.handle(method)
            self._send(answer.status, answer.body, answer.content_type, dict(answer.headers))
        elif path == self.server.telemetry_path:
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
        extra = self.server.web.headers if self.server.web is not None else {}
        for name, value in {**extra, **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        try:
            for part in parts:
                self.wfile.write(part)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format % args, extra={"fields": {"client": self.client_address[0]}})


class _HeaderBudget:
    """Reads header lines for parse_request and refuses more than ``budget`` bytes in all
    (the standard library alone allows 100 lines of 64 KiB)."""

    def __init__(self, stream: Any, budget: int) -> None:
        self.stream = stream
        self.left = budget

    def readline(self, limit: int = -1) -> bytes:
        line: bytes = self.stream.readline(
            min(limit, self.left + 1) if limit >= 0 else self.left + 1
        )
        self.left -= len(line)
        if self.left < 0:
            raise http.client.LineTooLong("header")
        return line
