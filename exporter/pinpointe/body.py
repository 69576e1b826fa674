"""One page's body: read within its bound, its JSON containers counted, then decoded.

Every page's decoded bytes are bounded by ``page_size`` x ``max_record_size`` (plus
ENVELOPE_BYTES; ``max_page_size`` at most, and alone when page_size is 0), and its JSON
objects and lists by the same bound / BYTES_PER_CONTAINER, so that parsing cannot cost
much more than the bytes themselves.
"""

from __future__ import annotations

import json
from typing import Any

import requests
import urllib3

from exporter.config import AccountConfig
from exporter.config.units import format_size
from exporter.pinpointe.deadline import Guard
from exporter.pinpointe.errors import PollError, deadline_error, is_timeout, root_cause
from exporter.reasons import Reason

# Room for the envelope (status, pagination) beside page_size x max_record_size.
ENVELOPE_BYTES = 64 * 1024
# A page may hold one JSON object or list per this many bytes of its bound: a parsed
# container costs 60-200 bytes, so a page of "{}" cannot cost 30 times its size.
BYTES_PER_CONTAINER = 64


def page_bound(account: AccountConfig) -> tuple[int, str]:
    """The most decoded bytes one page may take, and the settings that make it so."""
    if account.page_size > 0:
        relative = ENVELOPE_BYTES + account.page_size * account.max_record_size
        if relative < account.max_page_size:
            return relative, (
                f"page_size {account.page_size} x max_record_size "
                f"{format_size(account.max_record_size)}; raise max_record_size"
            )
    return account.max_page_size, (
        f"max_page_size {format_size(account.max_page_size)}; raise max_page_size"
    )


def read_body(
    account: AccountConfig, response: requests.Response, guard: Guard, where: str
) -> bytes:
    """The whole decoded body, within the page bound and the attempt's deadline."""
    bound, settings = page_bound(account)
    body = bytearray()
    try:
        while chunk := response.raw.read1(1 << 16, decode_content=True):
            body += chunk
            if len(body) > bound:
                raise PollError(
                    Reason.INVALID_RESPONSE,
                    f"{where} is larger than {format_size(bound)} (the bound from "
                    f"{settings} if the records really are that large)",
                )
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        if guard.fired is not None:
            raise deadline_error(account, guard.fired, where, body=True) from None
        if is_timeout(exc):
            raise deadline_error(account, "timeout", where, body=True) from None
        raise PollError(
            Reason.CONNECTION,
            f"the connection to {account.shown_url} broke while reading the response "
            f"({root_cause(exc)})",
        ) from None
    if guard.fired is not None:  # the socket was shut down between reads
        raise deadline_error(account, guard.fired, where, body=True)
    return bytes(body)


def check_containers(account: AccountConfig, raw: bytes, where: str) -> None:
    """Refuse, before parsing, a page of more JSON objects and lists than its bound allows.

    Braces inside strings are counted too: that can only make the count larger.
    """
    bound, settings = page_bound(account)
    most = bound // BYTES_PER_CONTAINER
    if raw.count(b"{") + raw.count(b"[") > most:
        raise PollError(
            Reason.INVALID_RESPONSE,
            f"{where} holds more than {most} JSON objects and lists, the most a page "
            f"within {format_size(bound)} may hold (the bound from {settings} if the "
            "records really are that many)",
        )


NOT_JSON = object()  # what decode_json returns for a body that is not JSON
TOO_DEEP = object()  # ... for JSON nested deeper than Python's parser goes


def decode_json(raw: bytes) -> Any:
    try:
        return json.loads(raw, parse_int=_integer)
    except ValueError:
        return NOT_JSON
    except RecursionError:
        return TOO_DEEP


def _integer(text: str) -> int | float:
    """A JSON integer; one too long for Python's int() (4300 digits) becomes a float
    (infinite), which no field takes, rather than making the whole page unreadable."""
    return int(text) if len(text) <= 4000 else float(text)
