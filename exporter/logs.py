"""Structured logging: logfmt (default) or JSON, one line per event.

Call sites pass fields with ``extra={"fields": {...}}``. Every known secret is
replaced in the final line, as a last line of defence behind redaction at the source.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}
_LEVEL_NAMES = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn"}
REDACTED = "<redacted>"


class _Formatter(logging.Formatter):
    def __init__(self, json_format: bool) -> None:
        super().__init__()
        self.json_format = json_format

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": _LEVEL_NAMES.get(record.levelno, "error"),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields.update(getattr(record, "fields", {}))
        if record.exc_info and record.levelno <= logging.DEBUG:
            # Debug lines name the error; tracebacks are for bugs (logged at error level).
            error = record.exc_info[1]
            fields["error"] = f"{type(error).__name__}: {error}" if error else "unknown"
        elif record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        line = json.dumps(fields, default=str) if self.json_format else logfmt(fields)
        return redact(line)


def redact_secrets(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each of ``secrets`` replaced by REDACTED, in any letter case (a
    server may fold a token's case, and field names are folded here)."""
    pattern = _secrets_pattern(tuple(secrets))
    return text if pattern is None else pattern.sub(REDACTED, text)


def _compile(secrets: tuple[str, ...]) -> re.Pattern[str] | None:
    longest_first = sorted({secret for secret in secrets if secret}, key=len, reverse=True)
    if not longest_first:
        return None
    return re.compile("|".join(map(re.escape, longest_first)), re.IGNORECASE)


# The few sets of secrets redact_secrets is given (an account's token forms) compile once.
_secrets_pattern = functools.lru_cache(maxsize=64)(_compile)


def logfmt(fields: dict[str, Any]) -> str:
    return " ".join(f"{_logfmt_key(key)}={_logfmt_value(value)}" for key, value in fields.items())


_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]")


def _logfmt_key(key: Any) -> str:
    return _KEY_UNSAFE.sub("_", str(key)) or "_"


# Characters that could end a line, fake one or rewrite a terminal: C0 and C1 controls
# (\r, ESC, U+0085, ...), DEL, the Unicode line and paragraph separators and the
# bidirectional overrides. logfmt writes them as escapes; JSON escapes all non-ASCII.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_SHORT = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    return _SHORT.get(char) or (
        f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"
    )


def _logfmt_value(value: Any) -> str:
    text = f"{value:.3f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)
    if text and not any(c in text for c in ' ="\\') and not _UNSAFE.search(text):
        return text
    escaped = _UNSAFE.sub(_escape_char, text.replace("\\", "\\\\").replace('"', '\\"'))
    return f'"{escaped}"'


def setup(level: str = "info", log_format: str = "logfmt") -> None:
    """Send the exporter's logs to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(log_format == "json"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS[level])
    logging.getLogger("urllib3").setLevel(logging.ERROR)


MIN_SECRET_LENGTH = 6
# Every secret registered (with how many holders registered it), and one pattern
# matching any of them, made again when the set changes (rarely: a start, a reload, a
# rotated token file).
_secrets: dict[str, int] = {}
_registry_lock = threading.Lock()
_registered: re.Pattern[str] | None = None


def redact(text: str) -> str:
    """``text`` with every registered secret replaced, in any letter case: what every
    log line goes through, and every message that is stored to be shown elsewhere."""
    pattern = _registered
    return text if pattern is None else pattern.sub(REDACTED, text)


def excerpt(text: str, limit: int, more: str = "…") -> str:
    """``text`` as a message may quote it: redacted first, then cut at ``limit``
    characters (cutting first could leave part of a secret that no longer matches)."""
    text = redact(text)
    return text if len(text) <= limit else text[:limit] + more


def register_secret(secret: str) -> None:
    """Never print this value, whatever logs it.

    Values too short to be real tokens are not replaced: masking "x" everywhere would
    mangle every line while protecting nothing.
    """
    if len(secret) < MIN_SECRET_LENGTH:
        return
    with _registry_lock:
        _secrets[secret] = _secrets.get(secret, 0) + 1
        if _secrets[secret] == 1:
            _recompile()


def unregister_secret(secret: str) -> None:
    """One holder of ``secret`` no longer has it (a token file rotated twice since):
    the value stays redacted while another holder has it."""
    with _registry_lock:
        left = _secrets.get(secret, 0) - 1
        if left > 0:
            _secrets[secret] = left
        elif secret in _secrets:
            del _secrets[secret]
            _recompile()


def _recompile() -> None:
    global _registered
    _registered = _compile(tuple(_secrets))
