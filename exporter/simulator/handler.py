"""The simulator's HTTP side: the API endpoint, the admin endpoints and fault dispatch.

It reaches the Simulator (server.py) only through the few methods of ``Host``."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any, Protocol

from exporter.simulator.wire import failed, handler_send, request_cursor

log = logging.getLogger("exporter.simulator")


@dataclass(frozen=True)
class RequestRecord:
    """One API request as the simulator saw it (monotonic clock of the simulator process)."""

    username: str
    received: float
    answered: float | None  # when the status line went out; None if no response was sent
    status: int | None
    cursor: int


@dataclass(frozen=True)
class Arrival:
    """An API request as the Simulator takes it: the account's fault (None: answer
    normally), the fault's parameters with their defaults, how many requests came since
    the fault was set, and whether the fault should stop (the simulator stops, or the
    fault changes)."""

    fault: str | None
    params: dict[str, Any]
    sequence: int
    stopping: Callable[[], bool]


class Host(Protocol):
    """What the handler needs of the Simulator."""

    admin: bool  # serve /admin/fault and /admin/stats

    def answer(self, request: Any) -> tuple[int, dict[str, Any]]: ...

    def received(self, username: str) -> Arrival: ...

    def log_request(self, record: RequestRecord) -> None: ...

    def set_fault(self, username: str, fault: str | None, **params: Any) -> None: ...

    def stats(self) -> dict[str, Any]: ...


def handler_for(sim: Host) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "pinpointe-simulator"
        disable_nagle_algorithm = True
        pending: tuple[str, float, int] | None = None  # an API request not yet logged

        def log_message(self, format: str, *args: Any) -> None:
            log.debug(format % args)

        def send_response(self, code: int, message: str | None = None) -> None:
            # Logged before the answer leaves, so the log is complete once a client has it.
            self._log_request(time.monotonic(), code)
            super().send_response(code, message)

        def _log_request(self, answered: float | None, status: int | None) -> None:
            if self.pending is not None:
                username, received, cursor = self.pending
                self.pending = None
                sim.log_request(RequestRecord(username, received, answered, status, cursor))

        def _json_body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            return json.loads(raw)

        def do_GET(self) -> None:
            if self.path == "/admin/stats" and sim.admin:
                handler_send(self, 200, sim.stats())
            else:
                handler_send(self, 404, {"error": "not found"})

        def do_POST(self) -> None:
            received = time.monotonic()
            try:
                body = self._json_body()
            except (ValueError, UnicodeDecodeError):
                handler_send(self, 400, failed("Invalid request: malformed JSON"))
                return
            if self.path == "/admin/fault" and sim.admin:
                try:
                    params = body.get("params") or {}
                    if not isinstance(params, dict):
                        raise TypeError("params must be an object")
                    sim.set_fault(str(body["username"]), body.get("fault"), **params)
                except (KeyError, TypeError, ValueError, AttributeError) as exc:
                    handler_send(self, 400, {"error": str(exc)})
                    return
                handler_send(self, 200, {"ok": True})
                return
            if self.path.split("?")[0] != "/apijson.php":
                handler_send(self, 404, {"error": "not found"})
                return
            username = str(body.get("username", "")) if isinstance(body, dict) else ""
            cursor = request_cursor(body)[0]
            self.pending = (username, received, cursor)
            came = sim.received(username)
            try:
                if came.fault is None:
                    handler_send(self, *sim.answer(body))
                    return
                # A fault is set, so set_fault has imported fault injection (server.py).
                from exporter.simulator.faults import FAULTS, FaultCall, applies

                if not applies(came.params, cursor, came.sequence):
                    handler_send(self, *sim.answer(body))
                    return
                call = FaultCall(self, body, sim.answer, came.params, came.sequence, came.stopping)
                FAULTS[came.fault](call)
            finally:
                self._log_request(None, None)  # no answer was sent (hang, reset)

    return Handler
