"""Reading one HTTP/1.0 or HTTP/1.1 request head, strictly.

The standard library's ``BaseHTTPRequestHandler`` serves HTTP/0.9 (a bare ``GET /path``
line, even one cut off by end-of-file), accepts header lines without a colon and leaves
a request body on the connection to be read as the next request. Here:

- the request line is ``METHOD SP target SP HTTP/1.0|HTTP/1.1``; anything else is a 400
  (505 for HTTP/2 and later), and a line or head cut off by end-of-file gets no answer;
- every header line is ``name: value`` with a token for a name (no space before the
  colon, no folded continuation lines); anything else is a 400;
- a body is read and discarded when its length is given and small (up to
  ``MAX_DISCARDED_BODY``); a larger one is refused with 413, a ``Transfer-Encoding`` with
  411, conflicting or invalid lengths with 400. A refusal closes the connection, so no
  byte of a body is ever taken for a request;
- the request line is at most ``MAX_REQUEST_LINE`` bytes (414 beyond) and the header
  lines ``MAX_HEADER_BYTES`` in all (431 beyond).
"""

from __future__ import annotations

import http.client
import re
from dataclasses import dataclass
from http import HTTPStatus
from typing import Protocol

MAX_REQUEST_LINE = 8 * 1024
MAX_HEADER_BYTES = 32 * 1024
MAX_DISCARDED_BODY = 64 * 1024

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_OTHER_VERSION = re.compile(r"HTTP/(\d+)\.\d+")
_DIGITS = re.compile(r"[0-9]+")
VERSIONS = ("HTTP/1.0", "HTTP/1.1")


class LineReader(Protocol):
    def readline(self, size: int = -1, /) -> bytes: ...


class BadRequest(Exception):
    """A request the server answers with ``status`` and then closes the connection."""

    def __init__(self, status: HTTPStatus, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class RequestHead:
    method: str
    target: str
    version: str
    headers: http.client.HTTPMessage
    body_length: int

    @property
    def line(self) -> str:
        return f"{self.method} {self.target} {self.version}"

    @property
    def keep_alive(self) -> bool:
        tokens = {
            t.strip().lower() for t in ",".join(self.headers.get_all("Connection", [])).split(",")
        }
        if self.version == "HTTP/1.1":
            return "close" not in tokens
        return "keep-alive" in tokens

    @property
    def expects_continue(self) -> bool:
        expect = self.headers.get("Expect", "")
        return self.version == "HTTP/1.1" and expect.strip().lower() == "100-continue"


def read_head(stream: LineReader) -> RequestHead | None:
    """The next request head on ``stream``; None when the client closed the connection
    before completing one (nothing is answered then). Raises BadRequest."""
    line = stream.readline(MAX_REQUEST_LINE + 1)
    if line in (b"\r\n", b"\n"):  # one empty line before a request is tolerated
        line = stream.readline(MAX_REQUEST_LINE + 1)
    if len(line) > MAX_REQUEST_LINE:
        raise BadRequest(HTTPStatus.REQUEST_URI_TOO_LONG, "request line too long")
    if not line.endswith(b"\n"):
        return None
    method, target, version = parse_request_line(line)
    headers = http.client.HTTPMessage()
    budget = MAX_HEADER_BYTES
    while True:
        raw = stream.readline(budget + 1)
        budget -= len(raw)
        if budget < 0:
            raise BadRequest(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "headers too large")
        if not raw.endswith(b"\n"):
            return None
        if raw in (b"\r\n", b"\n"):
            break
        name, value = parse_header_line(raw)
        headers[name] = value
    return RequestHead(method, target, version, headers, body_length(headers))


def parse_request_line(raw: bytes) -> tuple[str, str, str]:
    """``b"GET /metrics HTTP/1.1\\r\\n"`` -> ("GET", "/metrics", "HTTP/1.1")."""
    text = _strip_eol(raw).decode("latin-1")
    parts = text.split(" ")
    if len(parts) != 3 or not all(parts):
        raise BadRequest(HTTPStatus.BAD_REQUEST, f"malformed request line {text!r}")
    method, target, version = parts
    if not _TOKEN.fullmatch(method) or _CONTROL.search(target) or "\t" in target:
        raise BadRequest(HTTPStatus.BAD_REQUEST, f"malformed request line {text!r}")
    if version not in VERSIONS:
        other = _OTHER_VERSION.fullmatch(version)
        if other and int(other.group(1)) >= 2:
            raise BadRequest(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, f"{version} not supported")
        raise BadRequest(HTTPStatus.BAD_REQUEST, f"unsupported protocol {version!r}")
    return method, target, version


def parse_header_line(raw: bytes) -> tuple[str, str]:
    """``b"Host: x\\r\\n"`` -> ("Host", "x"); a line that is not ``token: value`` is a 400."""
    text = _strip_eol(raw).decode("latin-1")
    name, colon, value = text.partition(":")
    if not colon or not _TOKEN.fullmatch(name):
        raise BadRequest(HTTPStatus.BAD_REQUEST, f"malformed header line {text[:100]!r}")
    value = value.strip(" \t")
    if _CONTROL.search(value):
        raise BadRequest(HTTPStatus.BAD_REQUEST, f"control character in header {name}")
    return name, value


def body_length(headers: http.client.HTTPMessage) -> int:
    """Bytes of request body to read and discard, or a BadRequest refusing the body."""
    lengths = headers.get_all("Content-Length", [])
    if headers.get_all("Transfer-Encoding"):
        if lengths:
            raise BadRequest(
                HTTPStatus.BAD_REQUEST, "both Content-Length and Transfer-Encoding given"
            )
        raise BadRequest(HTTPStatus.LENGTH_REQUIRED, "request bodies need a Content-Length")
    values = {v.strip() for value in lengths for v in value.split(",")}
    if not values:
        return 0
    text = values.pop()
    if values or not _DIGITS.fullmatch(text):
        raise BadRequest(HTTPStatus.BAD_REQUEST, "invalid Content-Length")
    if len(text) > 18 or int(text) > MAX_DISCARDED_BODY:
        raise BadRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request body too large")
    return int(text)


def _strip_eol(raw: bytes) -> bytes:
    return raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
