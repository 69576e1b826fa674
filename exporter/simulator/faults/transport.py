"""Faults of the connection itself: latency, silence, resets, cut bodies."""

from __future__ import annotations

import json
import socket
import struct

from exporter.simulator.faults.call import FaultCall, fault, wait


@fault(seconds=1.0)
def latency(call: FaultCall) -> None:
    """The normal answer, ``seconds`` late (``math.inf``: once released)."""
    wait(call, float(call.params.get("seconds", 1.0)))
    call.send(*call.answer())


@fault(seconds=30.0)
def hang(call: FaultCall) -> None:
    """Read the request, then say nothing until ``seconds`` pass (``math.inf``: until
    released); close without a response."""
    wait(call, float(call.params.get("seconds", 30.0)))
    call.handler.close_connection = True


@fault()
def reset(call: FaultCall) -> None:
    """Abort the connection with a TCP RST instead of answering."""
    sock = call.handler.connection
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    call.handler.close_connection = True
    sock.close()


@fault()
def cut_connection(call: FaultCall) -> None:
    """Announce the full body, send half of it, close the connection."""
    payload = json.dumps(call.answer()[1]).encode()
    handler = call.handler
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload[: len(payload) // 2])
    handler.close_connection = True
