"""Faults that are HTTP statuses: server errors and rate limiting."""

from __future__ import annotations

from exporter.simulator.faults.call import FaultCall, fault
from exporter.simulator.wire import failed

_ERROR_PAGE = b"<!DOCTYPE html><html><body><h1>%d %s</h1></body></html>"


def _status_page(status: int) -> bytes:
    phrase = {500: b"Internal Server Error", 502: b"Bad Gateway", 503: b"Service Unavailable"}
    return _ERROR_PAGE % (status, phrase.get(status, b"Error"))


@fault()
def http_500(call: FaultCall) -> None:
    call.send(500, _status_page(500), {"Content-Type": "text/html"})


@fault()
def http_502(call: FaultCall) -> None:
    call.send(502, _status_page(502), {"Content-Type": "text/html"})


@fault(retry_after=None)
def http_503(call: FaultCall) -> None:
    headers = {"Content-Type": "text/html"}
    if call.params.get("retry_after") is not None:
        headers["Retry-After"] = str(call.params["retry_after"])
    call.send(503, _status_page(503), headers)


@fault(retry_after=2)
def rate_limited(call: FaultCall) -> None:
    body = failed("Too many requests; slow down")
    call.send(429, body, {"Retry-After": str(call.params["retry_after"])})
