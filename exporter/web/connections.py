"""Open HTTP connections: a cap, deadlines and eviction.

Every accepted connection holds a slot until it is closed; there are at most ``limit``
slots (``--web.max-connections``). A connection is either *waiting* (for its TLS
handshake, its request line and headers, or the next request on a kept-alive
connection) or *serving* (a request is being answered). A waiting connection has a
deadline for the whole wait, not per read: a client that sends one byte now and then
is cut off when it runs out, however steady its trickle. A reaper thread enforces the
deadlines by shutting the socket down, which wakes the connection's thread with
end-of-file; nothing else has to poll a clock.

When every slot is taken, the accept loop evicts the connection that has been waiting
longest (it has not sent a complete request, or is idle between requests), so a client
with a real request gets a slot even while others hold every slot without sending
one. Connections that are serving are never evicted; when all are, accepting waits
for one to finish, as Go's ``LimitListener`` does.
"""

from __future__ import annotations

import contextlib
import logging
import resource
import socket
import threading
import time
from typing import Any

log = logging.getLogger("exporter.server")


DEFAULT_MAX_CONNECTIONS = 512  # --web.max-connections, as Prometheus'
REQUEST_TIMEOUT = 10.0  # from accept (or the first byte of a later request) to its last header
IDLE_TIMEOUT = 30.0  # a kept-alive connection waiting for its next request
IO_TIMEOUT = 30.0  # any one read or write, also while answering
DESCRIPTOR_RESERVE = 64  # descriptors beyond the connections: polls, logs, the listener


class Connection:
    """One accepted connection's socket, its phase and its deadline."""

    __slots__ = ("cut", "deadline", "since", "sock", "waiting")

    def __init__(self, sock: Any, deadline: float, now: float) -> None:
        self.sock = sock
        self.waiting = True
        self.since = now
        self.deadline = deadline
        self.cut = False  # shut down by the reaper or by eviction


class Connections:
    """The slots, the deadlines and the reaper thread of one server."""

    def __init__(self, limit: int, clock: Any = time.monotonic) -> None:
        if limit < 1:
            raise ValueError("the connection limit must be at least 1")
        self.limit = limit
        self._clock = clock
        self._open: dict[int, Connection] = {}
        self._reserved = 0
        self._lock = lock = threading.Lock()
        self._changed = threading.Condition(lock)  # a slot came free
        self._deadlines = threading.Condition(lock)  # an earlier deadline, or stop
        self._wake_at = float("inf")
        self._closed = False
        self.evicted = 0
        self.expired = 0
        self._reaper = threading.Thread(target=self._reap, name="http-deadlines", daemon=True)
        self._reaper.start()

    # -- slots -------------------------------------------------------------------
    def reserve(self, timeout: float) -> bool:
        """Take a slot for the next accept; evict the longest-waiting connection when all
        are taken. False if none came free within ``timeout`` (the caller tries again)."""
        end = self._clock() + timeout
        with self._lock:
            while len(self._open) + self._reserved >= self.limit:
                if not any(c.cut for c in self._open.values()):  # none already on its way out
                    self._evict_one()
                left = end - self._clock()
                if left <= 0 or self._closed:
                    return False
                self._changed.wait(left)
            self._reserved += 1
            return True

    def unreserve(self) -> None:
        """The accept that a slot was reserved for failed."""
        with self._lock:
            self._reserved -= 1
            self._changed.notify_all()

    def opened(self, sock: Any, deadline_in: float) -> Connection:
        """The reserved slot now holds ``sock``, waiting for at most ``deadline_in`` s."""
        now = self._clock()
        connection = Connection(sock, now + deadline_in, now)
        with self._lock:
            self._reserved -= 1
            self._open[id(connection)] = connection
            self._schedule(connection.deadline)
        return connection

    def closed(self, connection: Connection) -> None:
        """Give the slot back; call before closing the socket (the reaper never touches
        a socket after this)."""
        with self._lock:
            if self._open.pop(id(connection), None) is not None:
                self._changed.notify_all()

    def replace_socket(self, connection: Connection, wrap: Any) -> Any:
        """``wrap(sock)`` -> a new socket object for the same descriptor (TLS), swapped in
        under the lock so that the reaper always holds the object that owns the fd."""
        with self._lock:
            connection.sock = wrap(connection.sock)
            if connection.cut:
                _cut(connection.sock)
            return connection.sock

    @property
    def count(self) -> int:
        with self._lock:
            return len(self._open)

    # -- phases ------------------------------------------------------------------
    def wait(self, connection: Connection, seconds: float) -> None:
        """``connection`` waits (evictable) for at most ``seconds`` from now."""
        now = self._clock()
        with self._lock:
            connection.waiting = True
            connection.since = now
            connection.deadline = now + seconds
            self._schedule(connection.deadline)

    def serve(self, connection: Connection) -> None:
        """A complete request came in: no deadline, never evicted, until ``wait`` again."""
        with self._lock:
            connection.waiting = False
            connection.deadline = float("inf")

    def stop(self) -> None:
        with self._lock:
            self._closed = True
            self._changed.notify_all()
            self._deadlines.notify()

    # -- internals (with the lock held) --------------------------------------------
    def _schedule(self, deadline: float) -> None:
        if deadline < self._wake_at:
            self._deadlines.notify()

    def _evict_one(self) -> None:
        waiting = [c for c in self._open.values() if c.waiting and not c.cut]
        if waiting:
            victim = min(waiting, key=lambda c: c.since)
            victim.cut = True
            self.evicted += 1
            _cut(victim.sock)

    def _reap(self) -> None:
        with self._lock:
            while not self._closed:
                now = self._clock()
                upcoming = float("inf")
                for connection in self._open.values():
                    if connection.cut:
                        continue
                    if connection.deadline <= now:
                        connection.cut = True
                        self.expired += 1
                        _cut(connection.sock)
                    else:
                        upcoming = min(upcoming, connection.deadline)
                self._wake_at = upcoming
                self._deadlines.wait(None if upcoming == float("inf") else upcoming - now)


def _cut(sock: Any) -> None:
    """Shut the descriptor down (the peer sees end-of-file; a thread blocked reading or
    writing it wakes up). ``socket.socket.shutdown`` also for TLS sockets: the TLS
    layer's own shutdown would drop its state under the feet of the reading thread."""
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def raise_open_files_limit(needed: int) -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit, as Go programs do at start; warn
    when even that leaves too few descriptors for ``needed`` connections. Returns the
    soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):  # e.g. an infinite hard limit
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft != resource.RLIM_INFINITY and soft < needed + DESCRIPTOR_RESERVE:
        log.warning(
            "the open-files limit is low for --web.max-connections; accepting will pause "
            "whenever descriptors run out (raise the hard limit, e.g. ulimit -Hn)",
            extra={"fields": {"open_files_limit": soft, "max_connections": needed}},
        )
    return soft
