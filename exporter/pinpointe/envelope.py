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

from exporter import logs
from exporter.reasons import Reason


# Words of a FAILED message that mean the credentials were refused. Not a bare "token":
# a message quoting the request back would name the usertoken field.
def json_kind(value: Any) -> str:
    """What a JSON value is, in JSON's words: ``an object``, ``a list``, ``null``..."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "null"


CREDENTIAL_WORDS = re.compile(
    r"credential|authenticat|password|login|\b(?:invalid|wrong|bad|expired|unknown)\s+(?:user)?token",
    re.I,
)


class ResponseError(Exception):
    """A response that cannot be used; ``reason`` is a pinpointe_poll_errors_total reason."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Page:
    records: tuple[Any, ...]  # objects, but any JSON value a server put among them
    next_cursor: int | None


def parse_body(body: Any) -> Page:
    """Interpret one decoded JSON body of GetAutoresponderResults."""
    if not isinstance(body, dict):
        raise ResponseError(
            Reason.INVALID_RESPONSE, f"expected a JSON object, got {json_kind(body)}"
        )
    outer = body
    inner = _get(body, "response")
    if isinstance(inner, dict) and _get(body, "status") is None:
        body = inner

    status = _get(body, "status")
    if not isinstance(status, str):
        raise ResponseError(Reason.INVALID_RESPONSE, "the response has no status field")
    if status.strip().lower() != "success":
        message = error_message(body) or f"status {status!r} without an errormessage"
        reason = Reason.AUTH if CREDENTIAL_WORDS.search(message) else Reason.API_FAILED
        raise ResponseError(reason, message)

    data = _get(body, "data")
    records = tuple(_records(data))
    cursor = _next_cursor(body, data, outer)
    return Page(records, cursor)


# The most of a server's errormessage quoted in a log line.
MAX_MESSAGE_CHARS = 1000


def error_message(body: dict[str, Any]) -> str:
    """The errormessage of a FAILED body, a string or a list of strings, flattened."""
    message = _get(body, "errormessage")
    if isinstance(message, list):
        text = "; ".join(_show_part(part) for part in message if part not in (None, ""))
    elif message is None:
        return ""
    else:
        text = _show_part(message)
    return logs.excerpt(text, MAX_MESSAGE_CHARS, f"... ({len(text)} characters)")


def _show_part(part: Any) -> str:
    return part if isinstance(part, str) else _show(part)


def _records(data: Any) -> list[Any]:
    """The records of ``data``, in order; an item that is not an object is kept, for the
    collector to skip and count like any other record it cannot use."""
    if data is None or data == "" or data == [] or data == {}:
        return []
    if isinstance(data, list):
        return data
    if not isinstance(data, dict):
        raise ResponseError(Reason.INVALID_RESPONSE, f"data is {json_kind(data)}, not records")
    content = {key: value for key, value in data.items() if str(key).lower() != "pagination"}
    item = _get(content, "item")
    if item is not None and len(content) == 1:
        return _records(item)
    if not content:
        return []
    keys = list(content)
    if all(isinstance(key, str) and key.isascii() and key.isdigit() for key in keys):
        # {"0": {...}, "1": {...}}: records numbered as the keys say, whatever their values
        return [content[key] for key in sorted(keys, key=_numeric_order)]
    if all(isinstance(value, dict) for value in content.values()):
        return list(content.values())
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


# The largest cursor taken at face value: far beyond any account, far below the digit
# strings int() refuses (and the time it would spend on them).
MAX_CURSOR = 2**53


def _cursor_value(value: Any) -> int:
    if isinstance(value, float) and value.is_integer() and abs(value) <= MAX_CURSOR:
        value = int(value)
    if isinstance(value, str) and _digits(value.strip()) and len(value.strip()) <= 16:
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_CURSOR:
        raise ResponseError(
            Reason.PAGINATION, f"pagination.next is {_show(value)}, not a record offset"
        )
    return value


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _numeric_order(key: str) -> tuple[int, str]:
    """Sort key of a digit string by its value, without int() (which refuses long ones)."""
    digits = key.lstrip("0")
    return len(digits), digits


def _show(value: Any) -> str:
    """A short, one-line picture of a JSON value for a message."""
    if isinstance(value, str) and _digits(value.strip()) and len(value.strip()) > 16:
        return f"a {len(value.strip())}-digit number"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_CURSOR:
        return "a number too large to be an offset"
    return logs.excerpt(repr(value), 37, "...")


def _get(mapping: dict[str, Any], key: str) -> Any:
    if key in mapping:
        return mapping[key]
    for name, value in mapping.items():
        if isinstance(name, str) and name.lower() == key:
            return value
    return None
