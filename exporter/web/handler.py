"""One HTTP request on a connection: reading it strictly, routing it, answering it.

Serves /metrics (the pre-rendered exposition plus the few process metrics, in the
format and encoding the client asks for), the landing page, /-/healthy, /-/ready and
the extra routes (status page, lifecycle API). The request head is read by
``httpreq.py``; a kept-alive connection waits for its next request under the deadlines
of ``connections.py``. Any method other than GET and HEAD gets 405 unless a route
takes it.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any, Protocol, cast

from exporter import __version__
from exporter.exposition import OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE, Store, runtime_metrics
from exporter.web.connections import (
    IDLE_TIMEOUT,
    IO_TIMEOUT,
    REQUEST_TIMEOUT,
    Connection,
    Connections,
)
from exporter.web.request import BadRequest, read_head
from exporter.web.routes import RequestGuard, Route

log = logging.getLogger("exporter.server")


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


class Host(Protocol):
    """What a RequestHandler needs of the server that runs it (web/server.py's
    ExporterServer): the handler never imports the server."""

    store: Store
    telemetry_path: str
    routes: Mapping[str, Route]
    guard: RequestGuard | None
    connections: Connections

    @property
    def response_headers(self) -> Mapping[str, str]: ...

    def current_connection(self) -> Connection: ...


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = f"pinpointe-exporter/{__version__}"

    def version_string(self) -> str:
        return self.server_version

    timeout = IO_TIMEOUT
    disable_nagle_algorithm = True
    rfile: io.BufferedReader

    def setup(self) -> None:
        super().setup()
        self.host = cast(Host, self.server)
        self.link = self.host.current_connection()
        self.answered = False

    def handle_one_request(self) -> None:
        self.close_connection = True
        connections = self.host.connections
        try:
            if self.answered:  # kept alive: wait (evictably) for the next request to start
                connections.wait(self.link, IDLE_TIMEOUT)
                if not self.rfile.peek(1):
                    return
                connections.wait(self.link, REQUEST_TIMEOUT)
            self.command, self.request_version, self.requestline = "", "HTTP/1.1", ""
            try:
                head = read_head(self.rfile)
                if head is not None and head.body_length:
                    if head.expects_continue:
                        self.send_response_only(HTTPStatus.CONTINUE)
                        self.end_headers()
                    if len(self.rfile.read(head.body_length)) < head.body_length:
                        head = None
            except BadRequest as exc:
                log.debug(
                    "refused a request",
                    extra={"fields": {"client": self.client_address[0], "error": exc.detail}},
                )
                self.send_error(exc.status)
                return
            if head is None:  # the client closed before a complete request
                return
        except OSError:  # reset, timed out, or cut at the deadline
            return
        connections.serve(self.link)
        self.command, self.path, self.request_version = head.method, head.target, head.version
        self.requestline, self.headers = head.line, head.headers
        self.close_connection = not head.keep_alive
        method = getattr(self, "do_" + self.command, None)
        if method is None:
            self._not_allowed()
        else:
            method()
        self.wfile.flush()
        self.answered = True

    def do_GET(self) -> None:
        self._dispatch()

    do_HEAD = do_GET

    def _not_allowed(self) -> None:
        self.close_connection = True
        self._send(
            405, b"method not allowed\n", "text/plain; charset=utf-8", {"Allow": "GET, HEAD"}
        )

    def _write_method(self) -> None:
        route = self.host.routes.get(self.path.split("?", 1)[0])
        if route is None or self.command not in route.methods:
            self._not_allowed()
            return
        self._dispatch()

    do_POST = do_PUT = _write_method
    do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _not_allowed

    def _dispatch(self) -> None:
        path = self.path.split("?", 1)[0]
        if self.host.guard is not None:
            refusal = self.host.guard(self)
            if refusal is not None:
                status, headers = refusal
                reply = f"{HTTPStatus(status).phrase}\n".encode()
                self._send(status, reply, "text/plain; charset=utf-8", headers)
                return
        route = self.host.routes.get(path)
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
        elif path == self.host.telemetry_path:
            self._metrics()
        elif path == "/":
            page = _LANDING.format(version=__version__, metrics=self.host.telemetry_path)
            self._send(200, page.encode(), "text/html; charset=utf-8")
        elif path == "/-/healthy":
            self._send(200, b"Healthy\n", "text/plain; charset=utf-8")
        elif path == "/-/ready":
            pending = self.host.store.pending()
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
        exposition = self.host.store.exposition
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
        extra = self.host.response_headers
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
