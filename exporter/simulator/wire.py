"""What the simulated apijson.php says on the wire: FAILED bodies and JSON answers."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any

CREDENTIALS_FAILED = "Unable to verify user credentials"
METHOD = "getautoresponderresults"


def failed(message: str) -> dict[str, Any]:
    return {"status": "FAILED", "errormessage": message}


def handler_send(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: Any,
    headers: dict[str, str] | None = None,
) -> None:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    merged = {"Content-Type": "application/json", **(headers or {})}
    handler.send_response(status)
    for name, value in merged.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload)


def request_cursor(request: Any) -> tuple[int, int]:
    """The (next, limit) of a request's pagination details; (0, 0) when it has none."""
    details = request.get("details") if isinstance(request, dict) else None
    pagination = details.get("pagination") if isinstance(details, dict) else None
    if not isinstance(pagination, dict):
        return 0, 0
    try:
        return int(pagination.get("next") or 0), int(pagination.get("limit") or 0)
    except (TypeError, ValueError):
        return 0, 0
