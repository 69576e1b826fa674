"""Every log line is one line, in both formats, whatever text a server or client sends."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from exporter.logs import _Formatter

# C0 and C1 controls, DEL, the line and paragraph separators, NEL, a bidi override
HOSTILE = "a\rb\nc\x1b[31md\u2028e\u2029f\u0085g\x9bh\x00i\x7fj\u202ek\x0bl\x0cm"
LINE_BREAKERS = "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


def record(level: int = logging.ERROR, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ConnectionResetError(104, "Connection reset by peer")
        except ConnectionResetError:
            exc_info = sys.exc_info()
    entry = logging.LogRecord("exporter.x", level, __file__, 1, HOSTILE, None, exc_info)
    entry.fields = {"request": f"GET /{HOSTILE} HTTP/1.1", HOSTILE[:3]: 1}
    return entry


@pytest.mark.parametrize("json_format", [False, True])
def test_control_and_separator_characters_are_escaped(json_format: bool) -> None:
    line = _Formatter(json_format).format(record())
    assert len(line.splitlines()) == 1
    assert not any(char in line for char in LINE_BREAKERS + "\x1b\x00\x7f\x9b\u202e")
    if json_format:
        assert json.loads(line)["msg"] == HOSTILE
    else:
        assert (
            'msg="a\\rb\\nc\\x1b[31md\\u2028e\\u2029f\\x85g\\x9bh\\x00i\\x7fj\\u202ek\\x0bl\\x0cm"'
            in line
        )


@pytest.mark.parametrize("json_format", [False, True])
def test_debug_lines_name_the_error_without_a_traceback(json_format: bool) -> None:
    line = _Formatter(json_format).format(record(logging.DEBUG, exc=True))
    assert "Traceback" not in line and "File " not in line
    assert "ConnectionResetError: [Errno 104] Connection reset by peer" in line
    assert len(line.splitlines()) == 1


def test_error_lines_keep_the_traceback_on_one_line() -> None:
    line = _Formatter(False).format(record(logging.ERROR, exc=True))
    assert "Traceback (most recent call last):\\n" in line
    assert len(line.splitlines()) == 1
