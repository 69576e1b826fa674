"""Secrets from the configuration: values that never show themselves in text.

``Secret`` holds a usertoken given in the file (or through ``${VAR}``); ``FileSecret``
one read from ``usertoken_file``, read again when the file changes.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

from exporter import logs

log = logging.getLogger("exporter.config")


class Secret:
    """A string that never shows itself in repr, str or formatting."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def forms(self) -> tuple[str, ...]:
        """The value as it may appear in text: raw, and escaped as JSON (PHP escapes "/").
        Redaction matches each in any letter case (logs.redact_secrets)."""
        as_json = json.dumps(self._value)[1:-1]
        forms = {self._value, as_json, as_json.replace("/", "\\/")}
        return tuple(sorted((form for form in forms if form), key=len, reverse=True))

    def __repr__(self) -> str:
        return "Secret('<redacted>')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class FileSecret(Secret):
    """A ``usertoken_file``: read again whenever the file changes, so a rotated token is
    used from the next request on. A mounted Kubernetes or Docker secret is replaced by a
    symlink swap, which changes the file the path resolves to; one ``stat`` per request
    notices it. While the file is missing or empty the last token is kept."""

    __slots__ = ("_lock", "_signature", "path")

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._signature: tuple[int, ...] | None = None
        super().__init__("")
        self._value = self._read(self._stat()) or ""

    def _stat(self) -> tuple[int, ...] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)

    def _read(self, signature: tuple[int, ...] | None) -> str | None:
        try:
            text = self.path.read_text(encoding="utf-8").strip()
        except OSError:
            return None
        if not text:
            return None
        self._signature = signature
        for form in Secret(text).forms():
            logs.register_secret(form)
        return text

    def reveal(self) -> str:
        signature = self._stat()
        if signature is not None and signature != self._signature:
            with self._lock:
                if signature != self._signature:
                    token = self._read(signature)
                    if token is not None and token != self._value:
                        self._value = token
                        log.info(
                            "usertoken_file changed: the next request uses the new token",
                            extra={"fields": {"file": str(self.path)}},
                        )
        return self._value

    def forms(self) -> tuple[str, ...]:
        self.reveal()
        return super().forms()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FileSecret) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)
