"""Pinpointe response bodies -> records and the pagination cursor.

The envelope is not fully documented, so every plausible variant is accepted:
``data`` as a list, as an object keyed by index, as one record, or wrapped in
``item``; the whole body optionally wrapped in ``response``; the pagination section
at the top, inside ``data`` or inside ``response``. Anything else raises
ResponseError with a contract ``reason``; no other exception escapes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from exporter.yamlreader import json_kind as _kind

# Words of a FAILED message that mean the credentials were refused. Not a bare "token":
# a message quoting the request back would name the usertoken field.
CREDENTIAL_WORDS = re.compile(
    r"credential|authenticat|password|login|\b(?:invalid|wrong|bad|expired|unknown)\s+(?:user)?token",
    re.I,
)


class ResponseError(Exception):
    """A response that cannot be used; ``reason`` is a pinpointe_poll_errors_total reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Page:
    records: tuple[dict[str, Any], ...]
    next_cursor: int | None


def parse_body(body: Any) -> Page:
    """Interpret one decoded JSON body of GetAutoresponderResults."""
    if not isinstance(body, dict):
        raise ResponseError("invalid_response", f"expected a JSON object, got {_kind(body)}")
    outer = body
    inner = _get(body, "response")
    if isinstance(inner, dict) and _get(body, "status") is None:
        body = inner

    status = _get(body, "status")
    if not isinstance(status, str):
        raise ResponseError("invalid_response", "the response has no status field")
    if status.strip().lower() != "success":
        message = error_message(body) or f"status {status!r} without an errormessage"
        reason = "auth" if CREDENTIAL_WORDS.search(message) else "api_failed"
        raise ResponseError(reason, message)

    data = _get(body, "data")
    records = tuple(_records(data))
    cursor = _next_cursor(body, data, outer)
    return Page(records, cursor)


def error_message(body: dict[str, Any]) -> str:
    """The errormessage of a FAILED body, a string or a list of strings, flattened."""
    message = _get(body, "errormessage")
    if isinstance(message, list):
        return "; ".join(str(part) for part in message if part not in (None, ""))
    if message is None:
        return ""
    return str(message)


def _records(data: Any) -> list[dict[str, Any]]:
    if data is None or data == "" or data == [] or data == {}:
        return []
    if isinstance(data, list):
        for index, item in enumerate(data):
            if not isinstance(item, dict):
                raise ResponseError(
                    "invalid_response", f"data[{index}] is {_kind(item)}, not a record"
                )
        return data
    if not isinstance(data, dict):
        raise ResponseError("invalid_response", f"data is {_kind(data)}, not records")
    content = {key: value for key, value in data.items() if str(key).lower() != "pagination"}
    item = _get(content, "item")
    if item is not None and len(content) == 1:
        return _records(item)
    if not content:
        return []
    if all(isinstance(value, dict) for value in content.values()):
        keys = list(content)
        if all(isinstance(key, str) and key.isdigit() for key in keys):
            keys.sort(key=int)
        return [content[key] for key in keys]
    return [content]


def _next_cursor(body: dict[str, Any], data: Any, outer: dict[str, Any]) -> int | None:
    for holder in (body, data, outer):
        if not isinstance(holder, dict):
            continue
        section = _get(holder, "pagination")
        if isinstance(section, dict):
            value = _get(section, "next")
            if value is None or value == "":
                return None
            return _cursor_value(value)
    return None


def _cursor_value(value: Any) -> int:
    if isinstance(value, bool):
        raise ResponseError("pagination", f"pagination.next is {value!r}, not a record offset")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or value < 0:
        raise ResponseError("pagination", f"pagination.next is {value!r}, not a record offset")
    return value


def _get(mapping: dict[str, Any], key: str) -> Any:
    if key in mapping:
        return mapping[key]
    for name, value in mapping.items():
        if isinstance(name, str) and name.lower() == key:
            return value
    return None
