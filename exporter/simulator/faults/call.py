"""What a fault is: a function answering one API request its own way, registered under
its own name with its parameters' defaults (``@fault(seconds=1.0)``), and the helpers
faults share to take the normal answer apart."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from exporter.simulator.wire import handler_send, request_cursor


@dataclass
class FaultCall:
    """What a fault function gets: the raw request, the normal answer and its parameters."""

    handler: BaseHTTPRequestHandler
    request: Any
    respond: Callable[[Any], tuple[int, dict[str, Any]]]  # the normal answer to a request
    params: dict[str, Any]
    sequence: int  # 0 for the first request since the fault was set, then 1, 2, ...
    stopping: Callable[[], bool]

    def answer(self) -> tuple[int, dict[str, Any]]:
        """The normal (status, body) for this request, as it is now."""
        return self.respond(self.request)

    @property
    def cursor(self) -> int:
        return request_cursor(self.request)[0]

    @property
    def limit(self) -> int:
        return request_cursor(self.request)[1]

    def send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        handler_send(self.handler, status, body, headers)


Fault = Callable[[FaultCall], None]
# Fault name -> the function answering the request its own way (see DISPATCH_PARAMS for
# the requests it answers).
FAULTS: dict[str, Fault] = {}
# Fault name -> its parameters and their defaults.
FAULT_PARAMS: dict[str, dict[str, Any]] = {}


def fault(**params: Any) -> Callable[[Fault], Fault]:
    """Register the decorated function as the fault named after it; ``params`` are the
    parameters it takes, with their defaults."""

    def register(function: Fault) -> Fault:
        FAULTS[function.__name__] = function
        FAULT_PARAMS[function.__name__] = params
        return function

    return register


# set_fault parameters of every fault, saying which requests it answers: with
# ``later_pages=True`` not the first page of a chain, with ``after_requests=n`` not the
# first n requests since it was set (those get the normal answer).
DISPATCH_PARAMS = ("later_pages", "after_requests")


def applies(params: dict[str, Any], cursor: int, sequence: int) -> bool:
    """Whether the fault set with ``params`` answers this request (see DISPATCH_PARAMS)."""
    if params.get("later_pages") and cursor == 0:
        return False
    return sequence >= int(params.get("after_requests", 0))


def with_next(body: dict[str, Any], following: int | str | None) -> dict[str, Any]:
    """``body`` with its pagination ``next`` set (or removed, for None)."""
    holder = body.get("response", body)
    if following is None:
        holder.pop("pagination", None)
    else:
        holder["pagination"] = {"next": following}
    return body


def records_in(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The record dicts of a SUCCESS body, whatever the envelope (to distort them in place)."""
    holder = body.get("response", body)
    data = holder.get("data") if isinstance(holder, dict) else None
    if isinstance(data, dict) and "item" in data:
        data = data["item"]
    if isinstance(data, dict):
        data = list(data.values()) if all(isinstance(v, dict) for v in data.values()) else [data]
    return [r for r in data if isinstance(r, dict)] if isinstance(data, list) else []


def wait(call: FaultCall, seconds: float) -> None:
    """Wait ``seconds`` (``math.inf``: until released), ending early when the fault is
    changed or cleared, the simulator stops, or the client has closed the connection."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not call.stopping() and not _client_gone(call):
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))


def _client_gone(call: FaultCall) -> bool:
    """True once the client has closed its end (it gave up waiting for this answer)."""
    sock = call.handler.connection
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True
