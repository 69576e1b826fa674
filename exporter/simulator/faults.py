"""Faults the simulator can inject per account, switchable at run time.

Each fault is a function that answers one API request its own way; ``FaultCall``
gives it the raw request, the normal answer and the fault's parameters.
"""

from __future__ import annotations

import functools
import gzip
import json
import select
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from exporter.simulator.wire import CREDENTIALS_FAILED, failed, handler_send


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


# set_fault parameters of every fault, saying which requests it answers: with
# ``later_pages=True`` not the first page of a chain, with ``after_requests=n`` not the
# first n requests since it was set (those get the normal answer).
DISPATCH_PARAMS = ("later_pages", "after_requests")


def applies(params: dict[str, Any], cursor: int, sequence: int) -> bool:
    """Whether the fault set with ``params`` answers this request (see DISPATCH_PARAMS)."""
    if params.get("later_pages") and cursor == 0:
        return False
    return sequence >= int(params.get("after_requests", 0))


def request_cursor(request: Any) -> tuple[int, int]:
    details = request.get("details") if isinstance(request, dict) else None
    pagination = details.get("pagination") if isinstance(details, dict) else None
    if not isinstance(pagination, dict):
        return 0, 0
    try:
        return int(pagination.get("next") or 0), int(pagination.get("limit") or 0)
    except (TypeError, ValueError):
        return 0, 0


def _with_next(body: dict[str, Any], following: int | None) -> dict[str, Any]:
    holder = body.get("response", body)
    if following is None:
        holder.pop("pagination", None)
    else:
        holder["pagination"] = {"next": following}
    return body


def _records_in(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The record dicts of a SUCCESS body, whatever the envelope (to distort them in place)."""
    holder = body.get("response", body)
    data = holder.get("data") if isinstance(holder, dict) else None
    if isinstance(data, dict) and "item" in data:
        data = data["item"]
    if isinstance(data, dict):
        data = list(data.values()) if all(isinstance(v, dict) for v in data.values()) else [data]
    return [r for r in data if isinstance(r, dict)] if isinstance(data, list) else []


def _wait(call: FaultCall, seconds: float) -> None:
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


# -- faults: transport ---------------------------------------------------------------
def _fault_latency(call: FaultCall) -> None:
    """The normal answer, ``seconds`` late (``math.inf``: once released)."""
    _wait(call, float(call.params.get("seconds", 1.0)))
    call.send(*call.answer())


def _fault_hang(call: FaultCall) -> None:
    """Read the request, then say nothing until ``seconds`` pass (``math.inf``: until
    released); close without a response."""
    _wait(call, float(call.params.get("seconds", 30.0)))
    call.handler.close_connection = True


def _fault_reset(call: FaultCall) -> None:
    """Abort the connection with a TCP RST instead of answering."""
    sock = call.handler.connection
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    call.handler.close_connection = True
    sock.close()


def _fault_cut_connection(call: FaultCall) -> None:
    """Announce the full body, send half of it, close the connection."""
    payload = json.dumps(call.answer()[1]).encode()
    handler = call.handler
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload[: len(payload) // 2])
    handler.close_connection = True


# -- faults: HTTP status -------------------------------------------------------------
_ERROR_PAGE = b"<!DOCTYPE html><html><body><h1>%d %s</h1></body></html>"


def _status_page(status: int) -> bytes:
    phrase = {500: b"Internal Server Error", 502: b"Bad Gateway", 503: b"Service Unavailable"}
    return _ERROR_PAGE % (status, phrase.get(status, b"Error"))


def _fault_http_500(call: FaultCall) -> None:
    call.send(500, _status_page(500), {"Content-Type": "text/html"})


def _fault_http_502(call: FaultCall) -> None:
    call.send(502, _status_page(502), {"Content-Type": "text/html"})


def _fault_http_503(call: FaultCall) -> None:
    headers = {"Content-Type": "text/html"}
    if call.params.get("retry_after") is not None:
        headers["Retry-After"] = str(call.params["retry_after"])
    call.send(503, _status_page(503), headers)


def _fault_rate_limited(call: FaultCall) -> None:
    body = failed("Too many requests; slow down")
    call.send(429, body, {"Retry-After": str(call.params.get("retry_after", 2))})


# -- faults: FAILED bodies -----------------------------------------------------------
def _fault_auth(call: FaultCall) -> None:
    call.send(401, failed(CREDENTIALS_FAILED))


def _fault_auth_200(call: FaultCall) -> None:
    call.send(200, failed(CREDENTIALS_FAILED))


def _fault_failed_200(call: FaultCall) -> None:
    call.send(200, failed(str(call.params.get("message", "Autoresponder statistics unavailable"))))


def _fault_errormessage_list(call: FaultCall) -> None:
    messages = ["Autoresponder statistics unavailable", "Please try again later"]
    call.send(200, {"status": "FAILED", "errormessage": messages})


def _fault_echo_token(call: FaultCall) -> None:
    """A 400 FAILED that quotes the whole request back, usertoken included."""
    call.send(400, failed(f"Invalid request: {json.dumps(call.request)}"))


# -- faults: broken bodies -----------------------------------------------------------
def _fault_malformed_json(call: FaultCall) -> None:
    call.send(200, b'{"status": "SUCCESS", "data": [{"autoresponderid": "1",, }')


def _fault_html_page(call: FaultCall) -> None:
    page = b"<!DOCTYPE html><html><head><title>Maintenance</title></head><body>Back soon</body>"
    call.send(200, page, {"Content-Type": "text/html; charset=utf-8"})


def _fault_truncated(call: FaultCall) -> None:
    """A complete HTTP response whose JSON body stops half way."""
    payload = json.dumps(call.answer()[1]).encode()
    call.send(200, payload[: len(payload) // 2])


def _fault_fail_later_pages(call: FaultCall) -> None:
    if call.cursor > 0:
        call.send(500, b"<html><body>Internal Server Error</body></html>")
    else:
        call.send(*call.answer())


# -- faults: pagination --------------------------------------------------------------
def _fault_pagination_repeat(call: FaultCall) -> None:
    cursor, limit = call.cursor, call.limit
    status, body = call.answer()
    call.send(status, _with_next(body, cursor if cursor else limit))


def _fault_pagination_backwards(call: FaultCall) -> None:
    cursor, limit = call.cursor, call.limit
    status, body = call.answer()
    call.send(status, _with_next(body, cursor - 1 if cursor else limit))


def _fault_pagination_endless(call: FaultCall) -> None:
    cursor, limit = call.cursor, call.limit
    if limit:
        call.request["details"]["pagination"]["next"] = 0
    status, body = call.answer()
    call.send(status, _with_next(body, cursor + limit))


def _fault_short_pages(call: FaultCall) -> None:
    cursor, limit = call.cursor, call.limit
    if limit > 1:
        call.request["details"]["pagination"]["limit"] = limit - 1
    status, body = call.answer()
    call.send(status, _with_next(body, cursor + max(1, limit - 1)))


def _fault_no_pagination(call: FaultCall) -> None:
    status, body = call.answer()
    call.send(status, _with_next(body, None))


def _fault_scripted(call: FaultCall) -> None:
    """Answer the n-th request since the fault was set with ``pages[n] = [records, next]``
    (``next`` None leaves the pagination section out); later requests get 0 records."""
    pages = call.params.get("pages") or []
    count, following = pages[call.sequence] if call.sequence < len(pages) else (0, 0)
    details = call.request.get("details") if isinstance(call.request, dict) else None
    if isinstance(details, dict):
        details["pagination"] = {"next": 0, "limit": max(1, int(count))}
    status, body = call.answer()
    if not count:
        body.get("response", body)["data"] = []
    call.send(status, _with_next(body, following))


# -- faults: odd records -------------------------------------------------------------
DUPLICATE_MARKER = 987_654_321


def _fault_duplicates(call: FaultCall) -> None:
    """Every page after the first starts with the previous page's last record again, with
    a different sendsize (DUPLICATE_MARKER), as a server whose pages overlap would."""
    cursor, limit = call.cursor, call.limit
    if cursor > 0 and limit > 0:
        call.request["details"]["pagination"] = {"next": cursor - 1, "limit": limit}
    status, body = call.answer()
    records = _records_in(body)
    if cursor > 0 and limit > 0 and records:
        records[0]["sendsize"] = str(DUPLICATE_MARKER)
    call.send(status, body)


# Field -> the bad value bad_values puts in it, on the record at that position (0-based).
BAD_VALUES: tuple[tuple[int, str, Any], ...] = (
    (0, "emailopens", None),  # missing: the field is removed
    (1, "linkclicks", -5),  # negative number
    (2, "emailforwards", "n/a"),  # not a number
    (3, "unsubscribecount", "12.5"),  # fractional: accepted
    (4, "sendsize", "1e20"),  # huge: accepted
    (5, "bouncecount_hard", "NaN"),
    (6, "bouncecount_soft", "-3"),  # negative, as a string
    (7, "feedbackloopcount", True),  # a boolean is not a number
    (8, "emailopens_unique", "Infinity"),
    (9, "linkclicks_unique", {"value": 3}),
)


def _fault_bad_values(call: FaultCall) -> None:
    status, body = call.answer()
    records = _records_in(body)
    for position, name, value in BAD_VALUES:
        index = position - call.cursor
        if 0 <= index < len(records):
            if value is None:
                records[index].pop(name, None)
            else:
                records[index][name] = value
    call.send(status, body)


# Autoresponder id -> the name odd_names serves for it.
ODD_NAMES = {
    1: 'Say "hello"',
    2: "back\\slash \\n not a newline",
    3: "two\nlines",
    4: "party 🎉 émoji ✉️",
    5: '\\"\n🎉"\\',
}


def _fault_odd_names(call: FaultCall) -> None:
    status, body = call.answer()
    for record in _records_in(body):
        odd = ODD_NAMES.get(int(record.get("autoresponderid", 0)))
        if odd is not None:
            record["autorespondername"] = odd
    call.send(status, body)


def _fault_big_response(call: FaultCall) -> None:
    """Pad every record with a long text field until the body is ``bytes`` long (10 MB)."""
    status, body = call.answer()
    records = _records_in(body)
    size = int(call.params.get("bytes", 10_000_000))
    if records:
        each = max(0, size - len(json.dumps(body))) // len(records) + 1
        for record in records:
            record["description"] = "x" * each
    call.send(status, body)


# -- faults: hostile answers (README "Reliability and security") ----------------------
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


def _fault_gzip_bomb(call: FaultCall) -> None:
    """``bytes`` of ``{}`` records (256 MiB) in a small gzip body; ``layers: 2`` sends
    ``Content-Encoding: gzip, gzip`` (each layer multiplies)."""
    layers = int(call.params.get("layers", 1))
    body = _gzip_bomb(int(call.params.get("bytes", 256 << 20)), layers)
    encoding = ", ".join(["gzip"] * layers)
    try:
        call.send(200, body, {"Content-Encoding": encoding})
    except OSError:
        call.handler.close_connection = True


def _fault_object_bomb(call: FaultCall) -> None:
    """``bytes`` (64 MiB) of uncompressed ``item`` values (``{}``): 20-30 times that once
    parsed."""
    item = str(call.params.get("item", "{}")).encode()
    block = (item + b",") * ((1 << 18) // len(item))
    head, tail = b'{"status": "SUCCESS", "data": [', item + b"]}"
    _send_raw(call, head, block, int(call.params.get("bytes", 64 << 20)), tail)


def _fault_too_many_records(call: FaultCall) -> None:
    """A page with twice the records pagination.limit asked for."""
    limit = call.limit
    if limit:
        call.request["details"]["pagination"]["limit"] = limit * 2
    call.send(*call.answer())


def _fault_trickle_headers(call: FaultCall) -> None:
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
            _wait(call, interval)
        handler.wfile.write(payload)
    except OSError:
        pass


def _fault_giant_labels(call: FaultCall) -> None:
    """The first page's first autorespondername is ``length`` characters long (1,000,000)."""
    status, body = call.answer()
    records = _records_in(body)
    if records and call.cursor == 0:
        records[0]["autorespondername"] = "G" * int(call.params.get("length", 1_000_000))
    call.send(status, body)


def _fault_long_names(call: FaultCall) -> None:
    """Every record's autorespondername is ``length`` characters (1000): each page within
    its bound, a whole poll of a large account far over what /metrics can hold."""
    status, body = call.answer()
    length = int(call.params.get("length", 1000))
    for record in _records_in(body):
        name = str(record.get("autorespondername"))
        record["autorespondername"] = (name + " " + "L" * length)[:length]
    call.send(status, body)


def _fault_token_in_name(call: FaultCall) -> None:
    """Every record's name quotes the usertoken of the request."""
    status, body = call.answer()
    token = str(call.request.get("usertoken", ""))
    for record in _records_in(body):
        record["autorespondername"] = f"{record.get('autorespondername')} for {token}"
    call.send(status, body)


def _fault_all_invalid(call: FaultCall) -> None:
    """Records without an autoresponderid or a name: not one of them can be used."""
    status, body = call.answer()
    for record in _records_in(body):
        for field in ("autoresponderid", "autorespondername"):
            record.pop(field, None)
    call.send(status, body)


def _fault_huge_next(call: FaultCall) -> None:
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


def _fault_log_injection(call: FaultCall) -> None:
    call.send(200, failed(INJECTED_MESSAGE))


# Fault name -> a function answering the request its own way (see DISPATCH_PARAMS for
# the requests it answers).
Fault = Callable[[FaultCall], None]
FAULTS: dict[str, Fault] = {
    "latency": _fault_latency,
    "hang": _fault_hang,
    "reset": _fault_reset,
    "cut_connection": _fault_cut_connection,
    "http_500": _fault_http_500,
    "http_502": _fault_http_502,
    "http_503": _fault_http_503,
    "rate_limited": _fault_rate_limited,
    "auth": _fault_auth,
    "auth_200": _fault_auth_200,
    "failed_200": _fault_failed_200,
    "errormessage_list": _fault_errormessage_list,
    "echo_token": _fault_echo_token,
    "malformed_json": _fault_malformed_json,
    "html_page": _fault_html_page,
    "truncated": _fault_truncated,
    "fail_later_pages": _fault_fail_later_pages,
    "pagination_repeat": _fault_pagination_repeat,
    "pagination_backwards": _fault_pagination_backwards,
    "pagination_endless": _fault_pagination_endless,
    "short_pages": _fault_short_pages,
    "no_pagination": _fault_no_pagination,
    "scripted": _fault_scripted,
    "duplicates": _fault_duplicates,
    "bad_values": _fault_bad_values,
    "odd_names": _fault_odd_names,
    "big_response": _fault_big_response,
    "gzip_bomb": _fault_gzip_bomb,
    "object_bomb": _fault_object_bomb,
    "too_many_records": _fault_too_many_records,
    "trickle_headers": _fault_trickle_headers,
    "giant_labels": _fault_giant_labels,
    "long_names": _fault_long_names,
    "token_in_name": _fault_token_in_name,
    "all_invalid": _fault_all_invalid,
    "huge_next": _fault_huge_next,
    "log_injection": _fault_log_injection,
}
# Fault name -> its parameters and their defaults.
FAULT_PARAMS: dict[str, dict[str, Any]] = {
    "latency": {"seconds": 1.0},
    "hang": {"seconds": 30.0},
    "http_503": {"retry_after": None},
    "rate_limited": {"retry_after": 2},
    "failed_200": {"message": "Autoresponder statistics unavailable"},
    "scripted": {"pages": []},
    "big_response": {"bytes": 10_000_000},
    "gzip_bomb": {"bytes": 256 << 20, "layers": 1},
    "object_bomb": {"bytes": 64 << 20, "item": "{}"},
    "trickle_headers": {"interval": 0.25},
    "giant_labels": {"length": 1_000_000},
    "long_names": {"length": 1000},
    "huge_next": {"digits": 5000},
}
