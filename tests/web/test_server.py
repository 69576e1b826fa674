"""request.py and connections.py in-process: strict request reading, the connection cap,
deadlines and eviction, in milliseconds."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from http import HTTPStatus

import pytest

from exporter.web.connections import Connections
from exporter.web.request import (
    MAX_DISCARDED_BODY,
    BadRequest,
    RequestHead,
    read_head,
)
from tests.conftest import closed_by_peer


def head(raw: bytes) -> RequestHead | None:
    return read_head(io.BufferedReader(io.BytesIO(raw)))


def refusal(raw: bytes) -> HTTPStatus:
    with pytest.raises(BadRequest) as caught:
        head(raw)
    return caught.value.status


def test_a_request_head_is_parsed() -> None:
    parsed = head(b"GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\nAccept:  text/plain \r\n\r\nrest")
    assert parsed is not None
    assert (parsed.method, parsed.target, parsed.version) == ("GET", "/metrics?x=1", "HTTP/1.1")
    assert parsed.headers.get("accept") == "text/plain"
    assert parsed.body_length == 0
    assert parsed.keep_alive


@pytest.mark.parametrize(
    ("version", "connection", "keep_alive"),
    [
        ("HTTP/1.1", None, True),
        ("HTTP/1.1", "close", False),
        ("HTTP/1.1", "Keep-Alive, Close", False),
        ("HTTP/1.0", None, False),
        ("HTTP/1.0", "keep-alive", True),
    ],
)
def test_keep_alive_follows_the_version_and_connection_header(
    version: str, connection: str | None, keep_alive: bool
) -> None:
    extra = f"Connection: {connection}\r\n" if connection else ""
    parsed = head(f"GET / {version}\r\n{extra}\r\n".encode())
    assert parsed is not None and parsed.keep_alive is keep_alive


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"GET /metrics",  # half a request line, then end-of-file
        b"GET /metrics HTTP/1.1",
        b"GET /metrics HTTP/1.1\r\nHost: x\r\n",  # headers without their blank line
        b"GET /metrics HTTP/1.1\r\nHost: x",
    ],
)
def test_a_head_cut_off_by_end_of_file_is_not_a_request(raw: bytes) -> None:
    assert head(raw) is None


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GET /metrics\r\n\r\n", 400),  # HTTP/0.9
        (b"GET /metrics HTTP/0.9\r\n\r\n", 400),
        (b"GET /metrics HTTP/1.2\r\n\r\n", 400),
        (b"GET /metrics HTTP/2.0\r\n\r\n", 505),
        (b"GET /metrics http/1.1\r\n\r\n", 400),
        (b"GET  /metrics HTTP/1.1\r\n\r\n", 400),
        (b"GET /metrics HTTP/1.1 x\r\n\r\n", 400),
        (b"G(T /metrics HTTP/1.1\r\n\r\n", 400),
        (b"GET /me\x00trics HTTP/1.1\r\n\r\n", 400),
        (b"GET /metrics HTTP/1.1\r\nNoColonHere\r\n\r\n", 400),
        (b"GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n", 400),
        (b"GET /metrics HTTP/1.1\r\n: x\r\n\r\n", 400),
        (b"GET /metrics HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400),
        (b"GET /metrics HTTP/1.1\r\nX-A: a\rb\r\n\r\n", 400),
        (b"GET /metrics HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400),
        (b"GET /metrics HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
        (b"GET /metrics HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\n", 400),
        (b"GET /metrics HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (b"GET /m HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 411),
        (b"GET /metrics HTTP/1.1\r\nContent-Length: 65537\r\n\r\n", 413),
        (b"GET /metrics HTTP/1.1\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n", 413),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\n" + b"X-H: " + b"b" * 33_000 + b"\r\n\r\n", 431),
    ],
)
def test_malformed_requests_are_refused(raw: bytes, status: int) -> None:
    assert refusal(raw) == status


def test_a_small_body_is_announced_for_discarding() -> None:
    length = MAX_DISCARDED_BODY
    parsed = head(b"POST /-/reload HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % length)
    assert parsed is not None and parsed.body_length == length
    same = head(b"GET / HTTP/1.1\r\nContent-Length: 7, 7\r\nContent-Length: 7\r\n\r\n")
    assert same is not None and same.body_length == 7


@pytest.fixture
def table() -> Iterator[Connections]:
    connections = Connections(3)
    yield connections
    connections.stop()


def pair() -> tuple[socket.socket, socket.socket]:
    ours, theirs = socket.socketpair()
    theirs.settimeout(60)  # for closed_by_peer: the longest the table may take to cut it
    return ours, theirs


def test_a_full_table_evicts_the_longest_waiting_connection(table: Connections) -> None:
    pairs = [pair() for _ in range(3)]
    links = []
    for ours, _ in pairs:
        assert table.reserve(1.0)
        links.append(table.opened(ours, 60))
    table.serve(links[0])  # answering a request: never evicted
    assert table.reserve(0.05) is False  # nobody closed the evicted socket yet
    assert closed_by_peer(pairs[1][1])  # the oldest waiting one was cut
    table.closed(links[1])
    assert table.reserve(1.0)  # and its slot is free once it is closed
    pairs[0][1].setblocking(False)
    with pytest.raises(BlockingIOError):  # the serving connection was not touched
        pairs[0][1].recv(1)
    assert table.evicted == 1
    for ours, theirs in pairs:
        ours.close()
        theirs.close()


def test_only_serving_connections_make_accepting_wait(table: Connections) -> None:
    links = []
    sockets = [pair() for _ in range(3)]
    for ours, _ in sockets:
        assert table.reserve(1.0)
        links.append(table.opened(ours, 60))
        table.serve(links[-1])
    assert table.reserve(0.05) is False
    assert table.evicted == 0 and table.count == 3
    table.closed(links[2])
    assert table.reserve(0.05) is True
    for ours, theirs in sockets:
        ours.close()
        theirs.close()


def test_a_waiting_connection_is_cut_at_its_deadline(table: Connections) -> None:
    ours, theirs = pair()
    assert table.reserve(1.0)
    link = table.opened(ours, 60)
    table.wait(link, 0.05)  # a shorter deadline than the one the reaper sleeps towards
    assert closed_by_peer(theirs)
    assert table.expired == 1
    table.closed(link)
    ours.close()
    theirs.close()
