"""What the server answers besides /metrics: the routes other layers add (the status
page, the lifecycle API), what a route replies, and the check a request passes first."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

# Checks a request before it is served; returns None to serve it, or (status, headers).
RequestGuard = Callable[[BaseHTTPRequestHandler], tuple[int, dict[str, str]] | None]


@dataclass(frozen=True)
class Reply:
    """What a route answers."""

    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    """An endpoint served beside /metrics and the health checks (the status page, the
    lifecycle API): the methods it answers (HEAD goes with GET) and its handler, called
    with the method after basic auth passed."""

    methods: tuple[str, ...]
    handle: Callable[[str], Reply]


LIFECYCLE_DISABLED = (
    "Lifecycle API is not enabled: start pinpointe-exporter with --web.enable-lifecycle "
    "to reload the configuration over HTTP (or send it SIGHUP)"
)


def lifecycle_route(reload: Callable[[str], tuple[bool | None, str]], enabled: bool) -> Route:
    """POST/PUT /-/reload: ``reload("http")`` -> (applied, message), answered 200 if
    applied, 500 if not, 503 if the request was folded into a reload another request
    waits for; served only with --web.enable-lifecycle (403 otherwise)."""

    def handle(method: str) -> Reply:
        if not enabled:
            return Reply(403, f"{LIFECYCLE_DISABLED}\n".encode())
        applied, message = reload("http")
        status = 200 if applied else 503 if applied is None else 500
        return Reply(status, f"{message}\n".encode())

    return Route(("POST", "PUT"), handle)


def page_route(content_type: str, body: Callable[[], bytes]) -> Route:
    """A GET (and HEAD) route answering 200 with ``body()``."""
    return Route(("GET",), lambda method: Reply(200, body(), content_type))
