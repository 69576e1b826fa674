"""Deadlines for whole HTTP exchanges with Pinpointe, headers and body included.

urllib3's read timeout bounds each socket read, so a server trickling its status line
and headers one byte at a time never hits it. Here every attempt (urllib3 makes one per
retry) arms a timer; when it fires, the attempt's socket is shut down, which ends any
read in progress at once. The poll's own deadline (``poll_timeout``) caps every timer.

The hooks are urllib3 2.x API: ``HTTPConnectionPool.urlopen`` (called once per attempt,
retries included), ``HTTPConnection.connect``, ``request`` and ``_new_conn`` (the raw
socket, before TLS), and a ``PoolManager``'s ``pool_classes_by_scheme``; pyproject.toml
keeps urllib3 below 3.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

TIMEOUT = "timeout"
POLL_TIMEOUT = "poll_timeout"


class Guard:
    """The deadlines of one request to Pinpointe, on the thread that sends it."""

    def __init__(self, timeout: float, poll_deadline: float | None) -> None:
        self.timeout = timeout
        self.poll_deadline = poll_deadline
        self.fired: str | None = None  # the key of the bound that was hit
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._timer: threading.Timer | None = None
        self._attempt = 0

    def arm(self) -> None:
        """A new attempt begins: it has ``timeout`` seconds, or less if the poll ends sooner."""
        bound, seconds = TIMEOUT, self.timeout
        if self.poll_deadline is not None and self.poll_deadline - time.monotonic() < seconds:
            bound, seconds = POLL_TIMEOUT, max(0.0, self.poll_deadline - time.monotonic())
        with self._lock:
            self._cancel_timer()
            self._sockets.clear()
            self.fired = None
            self._attempt += 1
            timer = self._timer = threading.Timer(seconds, self._fire, (bound, self._attempt))
        timer.daemon = True
        timer.start()

    def watch(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            if self.fired is None:
                self._sockets.append(sock)
                return
        _shut(sock)

    def expire(self, bound: str) -> None:
        """The bound is hit before an attempt began (an inline wait would pass it)."""
        with self._lock:
            self.fired = bound

    def _fire(self, bound: str, attempt: int) -> None:
        with self._lock:
            if self._timer is None or attempt != self._attempt:
                return
            self.fired = bound
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _shut(sock)

    def close(self) -> None:
        with self._lock:
            self._cancel_timer()
            self._sockets.clear()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


_local = threading.local()


def current() -> Guard | None:
    guard: Guard | None = getattr(_local, "guard", None)
    return guard


@contextlib.contextmanager
def guarded(timeout: float, poll_deadline: float | None) -> Iterator[Guard]:
    """Requests sent on this thread inside the block obey ``timeout`` and the deadline."""
    guard = Guard(timeout, poll_deadline)
    _local.guard = guard
    try:
        yield guard
    finally:
        _local.guard = None
        guard.close()


class _Watched:
    """Mixin for urllib3 connections: hand every socket to the current Guard."""

    sock: socket.socket | None

    def _new_conn(self) -> socket.socket:
        # The raw socket, before any TLS handshake on it: a trickled handshake is cut too.
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        guard = current()
        if guard is not None:
            guard.watch(sock)
        return sock

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        guard = current()
        if guard is not None:
            guard.watch(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        guard = current()
        if guard is not None:
            guard.watch(self.sock)
        super().request(*args, **kwargs)  # type: ignore[misc]


class _Connection(_Watched, HTTPConnection):
    pass


class _TLSConnection(_Watched, HTTPSConnection):
    pass


class _Arming(HTTPConnectionPool):
    """Arms the current Guard before each request (every attempt of a retry included)."""

    def urlopen(self, *args: Any, **kwargs: Any) -> Any:
        guard = current()
        if guard is not None:
            guard.arm()
        return super().urlopen(*args, **kwargs)


class _Pool(_Arming):
    ConnectionCls = _Connection


class _TLSPool(_Arming, HTTPSConnectionPool):
    ConnectionCls = _TLSConnection


class GuardedAdapter(HTTPAdapter):
    """A requests adapter whose connections obey the current Guard."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _Pool, "https": _TLSPool}
