"""Faults that are FAILED answers: refused credentials, refusals, and messages that quote
the request (the token included) back."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable

from exporter.simulator.faults.call import FaultCall, fault, with_next
from exporter.simulator.wire import CREDENTIALS_FAILED, failed


@fault()
def auth(call: FaultCall) -> None:
    call.send(401, failed(CREDENTIALS_FAILED))


@fault()
def auth_200(call: FaultCall) -> None:
    call.send(200, failed(CREDENTIALS_FAILED))


@fault(message="Autoresponder statistics unavailable")
def failed_200(call: FaultCall) -> None:
    call.send(200, failed(str(call.params.get("message", "Autoresponder statistics unavailable"))))


@fault()
def errormessage_list(call: FaultCall) -> None:
    messages = ["Autoresponder statistics unavailable", "Please try again later"]
    call.send(200, {"status": "FAILED", "errormessage": messages})


@fault()
def echo_token(call: FaultCall) -> None:
    """A 400 FAILED that quotes the whole request back, usertoken included."""
    call.send(400, failed(f"Invalid request: {json.dumps(call.request)}"))


_CASES: dict[str, Callable[[str], str]] = {
    "as_sent": str,
    "upper": str.upper,
    "lower": str.lower,
    "swapped": str.swapcase,
}


def _php_urlencode(text: str) -> str:
    return urllib.parse.quote_plus(text, safe="").replace("~", "%7E")


# How echo encodes the token: as sent, or as a server building a URL or header may.
ENCODINGS: dict[str, Callable[[str], str]] = {
    "none": str,
    "url": lambda text: urllib.parse.quote(text, safe=""),
    "url_slash": urllib.parse.quote,  # Python's default leaves "/" alone
    "php": _php_urlencode,
    "twice": lambda text: urllib.parse.quote(urllib.parse.quote(text, safe=""), safe=""),
    # UTF-8 bytes sent raw in a reason phrase or header, which clients read as Latin-1
    "utf8_raw": lambda text: text.encode().decode("latin-1"),
}


@fault(where="reason", status=503, case="as_sent", encoding="none")
def echo(call: FaultCall) -> None:
    """Quote the request's usertoken (in the letter case ``case``, encoded as ``encoding``
    says; a ``location`` is URL-encoded unless told otherwise) back ``where``: in the
    HTTP ``reason`` phrase of a ``status`` answer, in a redirect's ``location``, in a
    ``status_line`` that is not HTTP, in the body's ``status`` field, or as the body's
    pagination ``next``."""
    token = call.request.get("usertoken", "") if isinstance(call.request, dict) else ""
    token = _CASES[str(call.params.get("case", "as_sent"))](str(token))
    encoding = str(call.params.get("encoding", "none"))
    if encoding == "none" and call.params.get("where") == "location":
        encoding = "url"
    token = ENCODINGS[encoding](token)
    where = call.params.get("where", "reason")
    handler = call.handler
    if where == "reason":
        status = int(call.params.get("status", 503))
        handler.send_response(status, f"Denied for {token}")
        handler.send_header("Content-Length", "0")
        handler.end_headers()
    elif where == "location":
        location = f"https://login.example/?usertoken={token}"
        call.send(302, b"", {"Location": location})
    elif where == "status_line":
        handler.wfile.write(f"{token} 200 OK\r\nContent-Length: 0\r\n\r\n".encode())
        handler.close_connection = True
    elif where == "status":
        call.send(200, {"status": token, "data": []})
    elif where == "next":
        status, body = call.answer()
        call.send(status, with_next(body, token))
    else:
        raise ValueError(f"echo: unknown where {where!r}")
