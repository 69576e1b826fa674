"""The HTTP listener: accepting connections within a cap, one thread each.

Every connection has its own thread, and the TLS handshake happens in that thread,
not in the accept loop. At most ``--web.max-connections`` connections are open at once
(``connections.py``: a connection that has not sent a complete request in
REQUEST_TIMEOUT from its accept, or its next request within IDLE_TIMEOUT on a kept-alive
connection, is closed; at the cap the longest-waiting one makes room). The requests
on a connection are read and answered by ``handler.py``. When the process runs out of
file descriptors, accepting pauses (5 ms doubling to 1 s) instead of spinning.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from http.server import ThreadingHTTPServer
from typing import Any

from exporter.exposition import Store
from exporter.web.connections import (
    DEFAULT_MAX_CONNECTIONS,
    IO_TIMEOUT,
    REQUEST_TIMEOUT,
    Connection,
    Connections,
)
from exporter.web.handler import RequestHandler
from exporter.web.routes import RequestGuard, Route
from exporter.web.webconfig import WebConfig

log = logging.getLogger("exporter.server")

LINGER_SECONDS = 2.0
LINGER_BYTES = 1024 * 1024
ACCEPT_WAIT = 0.5  # at the cap with nothing to evict: look again this often
ACCEPT_PAUSE_MAX = 1.0  # out of descriptors: pause accepting 5 ms, doubling up to this
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


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
            super().__init__(("::" if self.dual_stack else host, address[1]), RequestHandler)
        except BaseException:
            self.connections.stop()
            raise

    @property
    def response_headers(self) -> Mapping[str, str]:
        """Headers every answer carries (the web config's http_server_config.headers)."""
        return self.web.headers if self.web is not None else {}

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
        """The TLS handshake (when configured); False if the client is not served. The
        handshake and the client-certificate check use one reading of the web config,
        even if it is reloaded meanwhile."""
        if self.web is None:
            return True
        self.web.refresh()
        policy = self.web.policy
        context = policy.ssl_context
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
        if not policy.peer_allowed(tls):
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
