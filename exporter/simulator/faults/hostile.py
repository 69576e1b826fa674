"""Hostile answers (docs/security.md): bombs, trickled headers, too many records, names
that add up, huge cursors, messages that try to break log lines."""

from __future__ import annotations

import functools
import gzip
import json

from exporter.simulator.faults.call import FaultCall, fault, records_in, wait
from exporter.simulator.wire import failed

_BOMB_BLOCK = b"{}," * (1 << 18)  # 768 KiB of empty records


@functools.lru_cache(maxsize=8)
def _gzip_bomb(size: int, layers: int) -> bytes:
    """A SUCCESS body of ``size`` bytes of ``{}`` records, gzipped ``layers`` times.

    Built from gzip members (one per block, all alike), which decoders join, so even a
    gigabyte costs a few milliseconds and about a kilobyte per block to make."""
    head, tail = b'{"status": "SUCCESS", "data": [', b"{}]}"
    blocks = max(1, (size - len(head) - len(tail)) // len(_BOMB_BLOCK))
    body = gzip.compress(head) + gzip.compress(_BOMB_BLOCK, 9) * blocks + gzip.compress(tail)
    for _ in range(layers - 1):
        body = gzip.compress(body, 9)
    return body


def _send_raw(call: FaultCall, head: bytes, block: bytes, size: int, tail: bytes) -> None:
    """Stream a 200 body of ``head``, ``block`` repeated to ``size`` bytes, ``tail``."""
    blocks = max(0, (size - len(head) - len(tail)) // len(block))
    handler = call.handler
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(head) + blocks * len(block) + len(tail)))
    handler.end_headers()
    try:
        handler.wfile.write(head)
        for _ in range(blocks):
            if call.stopping():
                break
            handler.wfile.write(block)
        handler.wfile.write(tail)
    except OSError:  # the exporter stopped reading: what a bound is for
        pass
    handler.close_connection = True


@fault(bytes=256 << 20, layers=1)
def gzip_bomb(call: FaultCall) -> None:
    """``bytes`` of ``{}`` records (256 MiB) in a small gzip body; ``layers: 2`` sends
    ``Content-Encoding: gzip, gzip`` (each layer multiplies)."""
    layers = int(call.params.get("layers", 1))
    body = _gzip_bomb(int(call.params.get("bytes", 256 << 20)), layers)
    encoding = ", ".join(["gzip"] * layers)
    try:
        call.send(200, body, {"Content-Encoding": encoding})
    except OSError:
        call.handler.close_connection = True


@fault(bytes=64 << 20, item="{}")
def object_bomb(call: FaultCall) -> None:
    """``bytes`` (64 MiB) of uncompressed ``item`` values (``{}``): 20-30 times that once
    parsed."""
    item = str(call.params.get("item", "{}")).encode()
    block = (item + b",") * ((1 << 18) // len(item))
    head, tail = b'{"status": "SUCCESS", "data": [', item + b"]}"
    _send_raw(call, head, block, int(call.params.get("bytes", 64 << 20)), tail)


@fault()
def too_many_records(call: FaultCall) -> None:
    """A page with twice the records pagination.limit asked for."""
    limit = call.limit
    if limit:
        call.request["details"]["pagination"]["limit"] = limit * 2
    call.send(*call.answer())


@fault(interval=0.25)
def trickle_headers(call: FaultCall) -> None:
    """The normal answer's status line and headers, one byte every ``interval`` seconds
    (0.25), then the body: a per-read timeout never fires."""
    status, body = call.answer()
    payload = json.dumps(body).encode()
    head = (
        f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\n"
        f"X-Padding: {'x' * 200}\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode()
    interval = float(call.params.get("interval", 0.25))
    handler = call.handler
    handler.close_connection = True
    try:
        for byte in head:
            if call.stopping():
                return
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
            wait(call, interval)
        handler.wfile.write(payload)
    except OSError:
        pass


@fault(length=1_000_000)
def giant_labels(call: FaultCall) -> None:
    """The first page's first autorespondername is ``length`` characters long (1,000,000)."""
    status, body = call.answer()
    records = records_in(body)
    if records and call.cursor == 0:
        records[0]["autorespondername"] = "G" * int(call.params.get("length", 1_000_000))
    call.send(status, body)


@fault(length=1000)
def long_names(call: FaultCall) -> None:
    """Every record's autorespondername is ``length`` characters (1000): each page within
    its bound, a whole poll of a large account far over what /metrics can hold."""
    status, body = call.answer()
    length = int(call.params.get("length", 1000))
    for record in records_in(body):
        name = str(record.get("autorespondername"))
        record["autorespondername"] = (name + " " + "L" * length)[:length]
    call.send(status, body)


@fault()
def token_in_name(call: FaultCall) -> None:
    """Every record's name quotes the usertoken of the request."""
    status, body = call.answer()
    token = str(call.request.get("usertoken", ""))
    for record in records_in(body):
        record["autorespondername"] = f"{record.get('autorespondername')} for {token}"
    call.send(status, body)


@fault()
def all_invalid(call: FaultCall) -> None:
    """Records without an autoresponderid or a name: not one of them can be used."""
    status, body = call.answer()
    for record in records_in(body):
        for field in ("autoresponderid", "autorespondername"):
            record.pop(field, None)
    call.send(status, body)


@fault(digits=5000)
def huge_next(call: FaultCall) -> None:
    """pagination.next as a string of ``digits`` (5000) nines."""
    status, body = call.answer()
    holder = body.get("response", body)
    holder["pagination"] = {"next": "9" * int(call.params.get("digits", 5000))}
    call.send(status, body)


# What log_injection puts in its errormessage: every way a line could be broken or faked.
INJECTED_MESSAGE = (
    "Statistics unavailable\r\nlevel=info msg=forged\x1b[31m red\u2028sep\u2029par"
    "\u0085nel\x9bcsi\x00nul\x7fdel"
)


@fault()
def log_injection(call: FaultCall) -> None:
    call.send(200, failed(INJECTED_MESSAGE))
