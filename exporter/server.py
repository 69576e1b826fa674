"""The HTTP side: /metrics, the landing page and the health endpoints.

A scrape writes bytes that were rendered when the data last changed; the only work
done per scrape is the client library's few process metrics.

Every connection has its own thread, and the TLS handshake happens in that thread,
not in the accept loop. At most ``--web.max-connections`` connections are open at once
(``connections.py``: a connection that has not sent a complete request in
REQUEST_TIMEOUT from its accept, or its next request within IDLE_TIMEOUT on a kept-alive
connection, is closed; at the cap the longest-waiting one makes room). Requests are
read strictly (``httpreq.py``): HTTP/1.0 and 1.1 only, bounded line, headers and body.
Any method other than GET and HEAD gets 405. When the process runs out of file
descriptors, accepting pauses (5 ms doubling to 1 s) instead of spinning.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from exporter import __version__
from exporter.connections import Connection, Connections
from exporter.httpreq import BadRequest, read_head
from exporter.metrics import (
    OPENMETRICS_CONTENT_TYPE,
    TEXT_CONTENT_TYPE,
)
from exporter.runtime import runtime_metrics
from exporter.state import Store

if TYPE_CHECKING:
    from exporter.webconfig import WebConfig

log = logging.getLogger("exporter.server")

DEFAULT_MAX_CONNECTIONS = 512
REQUEST_TIMEOUT = 10.0  # from accept (or the first byte of a later request) to its last header
IDLE_TIMEOUT = 30.0  # a kept-alive connection waiting for its next request
IO_TIMEOUT = 30.0  # any one read or write, also while answering
LINGER_SECONDS = 2.0
LINGER_BYTES = 1024 * 1024
ACCEPT_WAIT = 0.5  # at the cap with nothing to evict: look again this often
ACCEPT_PAUSE_MAX = 1.0  # out of descriptors: pause accepting 5 ms, doubling up to this
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

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
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
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
        self.connections = Connections(max_connections)
        self._current = threading.local()
        self._accept_pause = 0.0
        try:
            super().__init__(("::" if self.dual_stack else host, address[1]), _Handler)
        except BaseException:
            self.connections.stop()
            raise

    def server_bind(self) -> None:
        if self.dual_stack:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()

    def server_activate(self) -> None:
        super().server_activate()
        self.socket.setblocking(False)  # a client gone before accept must not block the loop

    def server_close(self) -> None:
        super().server_close()
        self.connections.stop()

    # -- accepting ---------------------------------------------------------------
    def get_request(self) -> tuple[Any, Any]:
        """Accept within the connection cap; an OSError makes the loop skip this round."""
        if not self.connections.reserve(ACCEPT_WAIT):
            raise OSError("every connection slot is serving a request")
        try:
            sock, address = self.socket.accept()
        except OSError as exc:
            self.connections.unreserve()
            if exc.errno in _OUT_OF_RESOURCES:
                self._pause_accepting(exc)
            raise
        if self._accept_pause:
            log.info("accepting connections again")
            self._accept_pause = 0.0
        self._current.pending = self.connections.opened(sock, REQUEST_TIMEOUT)
        return sock, address

    def _pause_accepting(self, exc: OSError) -> None:
        """Out of descriptors (or memory): the pending connection stays queued and the
        listening socket stays readable, so retrying at once would spin at full CPU."""
        if not self._accept_pause:
            log.warning(
                f"cannot accept connections: {exc.strerror}; pausing accepts until "
                "descriptors are free (raise the open-files limit or lower "
                "--web.max-connections)",
                extra={"fields": {"open_connections": self.connections.count}},
            )
        self._accept_pause = min(ACCEPT_PAUSE_MAX, max(0.005, self._accept_pause * 2))
        time.sleep(self._accept_pause)

    def process_request(self, request: Any, client_address: Any) -> None:
        connection = self._current.pending
        thread = threading.Thread(
            target=self._serve_connection, args=(connection, client_address), daemon=True
        )
        try:
            thread.start()
        except BaseException:
            self.connections.closed(connection)  # the caller closes the socket
            raise

    # -- one connection, in its own thread -------------------------------------------
    def current_connection(self) -> Connection:
        connection: Connection = self._current.connection
        return connection

    def _serve_connection(self, connection: Connection, client_address: Any) -> None:
        self._current.connection = connection
        try:
            if self._secure(connection, client_address):
                self.RequestHandlerClass(connection.sock, client_address, self)  # type: ignore[arg-type]
        except Exception:
            self.handle_error(connection.sock, client_address)
        finally:
            self._close(connection)

    def _secure(self, connection: Connection, client_address: Any) -> bool:
        """The TLS handshake (when configured); False if the client is not served."""
        if self.web is not None:
            self.web.refresh()
        context = self.web.ssl_context if self.web is not None else None
        if context is None:
            return True
        connection.sock.settimeout(IO_TIMEOUT)
        tls = self.connections.replace_socket(
            connection,
            lambda sock: context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False),
        )
        try:
            tls.do_handshake()
        except (ssl.SSLError, OSError) as exc:
            log.debug(
                "TLS handshake failed",
                extra={"fields": {"client": client_address[0], "error": str(exc)}},
            )
            return False
        if self.web is not None and not self.web.peer_allowed(tls):
            log.debug(
                "client certificate names none of client_allowed_sans",
                extra={"fields": {"client": client_address[0]}},
            )
            return False
        return True

    def _close(self, connection: Connection) -> None:
        """Close gracefully: FIN first, then read what the client was still sending (up
        to LINGER_BYTES, for at most LINGER_SECONDS), so that closing with unread data
        does not reset the connection before the client has read our answer (a 405 or
        431 sent before the request was fully read). TLS connections just shut down."""
        sock = connection.sock
        self.connections.wait(connection, LINGER_SECONDS)
        with contextlib.suppress(OSError):
            if isinstance(sock, ssl.SSLSocket):
                sock.shutdown(socket.SHUT_RDWR)
            else:
                sock.shutdown(socket.SHUT_WR)
                sock.settimeout(LINGER_SECONDS)
                drained = 0
                while drained < LINGER_BYTES:
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    drained += len(chunk)
        self.connections.closed(connection)
        sock.close()

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

    timeout = IO_TIMEOUT
    disable_nagle_algorithm = True
    server: ExporterServer
    rfile: io.BufferedReader

    def setup(self) -> None:
        super().setup()
        self.link = self.server.current_connection()
        self.answered = False

    def handle_one_request(self) -> None:
        self.close_connection = True
        connections = self.server.connections
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
        route = self.server.routes.get(self.path.split("?", 1)[0])
        if route is None or self.command not in route.methods:
            self._not_allowed()
            return
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
