"""Faults that break the body: malformed JSON, HTML pages, truncation, failing later
pages, a huge answer."""

from __future__ import annotations

import json

from exporter.simulator.faults.call import FaultCall, fault


@fault()
def malformed_json(call: FaultCall) -> None:
    call.send(200, b'{"status": "SUCCESS", "data": [{"autoresponderid": "1",, }')


@fault()
def html_page(call: FaultCall) -> None:
    page = b"<!DOCTYPE html><html><head><title>Maintenance</title></head><body>Back soon</body>"
    call.send(200, page, {"Content-Type": "text/html; charset=utf-8"})


@fault()
def truncated(call: FaultCall) -> None:
    """A complete HTTP response whose JSON body stops half way."""
    payload = json.dumps(call.answer()[1]).encode()
    call.send(200, payload[: len(payload) // 2])


@fault()
def fail_later_pages(call: FaultCall) -> None:
    if call.cursor > 0:
        call.send(500, b"<html><body>Internal Server Error</body></html>")
    else:
        call.send(*call.answer())
