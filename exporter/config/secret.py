"""Secrets from the configuration: values that never show themselves in text.

``Secret`` holds a usertoken given in the file (or through ``${VAR}``); ``FileSecret``
one read from ``usertoken_file``, read again when the file changes. Every value a
Secret ever holds is registered with the log redaction (logs.register_secret) the
moment it is known, so no text the exporter makes afterwards can carry it: log lines,
poll errors, label values, the status page. ``api_url`` may hold secrets too (a
password in its userinfo, a token in its query): ``url_secrets`` finds them and
``redacted_url`` is the URL as it may be shown.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import urllib.parse
from pathlib import Path

from exporter import logs
from exporter.config.files import FileProblem, read_text

log = logging.getLogger("exporter.config")

# A token is a few dozen characters; the file is refused beyond this.
MAX_TOKEN_FILE_SIZE = 4096


def secret_forms(value: str) -> tuple[str, ...]:
    """``value`` as an echo may carry it. Redaction matches each form in any letter case
    (logs.redact_secrets), longest first:

    - quoted: raw, escaped as JSON (PHP also escapes "/"), in a Python repr;
    - URL-encoded, as an echoed request URL or form body has it: every reserved character
      encoded, "/" left alone (Python's ``quote``), space as "+", "~" encoded too (PHP's
      ``urlencode``), and any of these encoded once more;
    - for a non-ASCII value, all of these made from its upper, lower and swapped case
      too ("ß" upper-cases to "SS", and an encoded "ö" is not an encoded "Ö", which a
      case-insensitive match alone does not see), and read back from UTF-8 as Latin-1
      (how http.client decodes a reason phrase or a header).
    """
    texts = {value}
    if not value.isascii():
        texts |= {value.upper(), value.lower(), value.swapcase()}
        texts |= {text.encode().decode("latin-1") for text in texts}
    forms: set[str] = set()
    for text in texts:
        forms |= _quoted(text)
        encoded = _url_encoded(text)
        forms |= encoded | {urllib.parse.quote(form, safe="") for form in encoded}
    return tuple(sorted((form for form in forms if form), key=len, reverse=True))


def _quoted(text: str) -> set[str]:
    as_json = json.dumps(text)[1:-1]
    python = repr(text)[1:-1]  # as an exception's repr in a message shows it
    single_quoted = python.replace("'", "\\'").replace("\\\\'", "\\'")
    return {text, as_json, as_json.replace("/", "\\/"), python, single_quoted}


def _url_encoded(text: str) -> set[str]:
    plus = urllib.parse.quote_plus(text, safe="")
    return {
        urllib.parse.quote(text, safe=""),
        urllib.parse.quote(text),
        plus,
        plus.replace("~", "%7E"),
    }


class Secret:
    """A string that never shows itself in repr, str or formatting."""

    __slots__ = ("_forms", "_value")

    def __init__(self, value: str) -> None:
        self._set(value)

    def _set(self, value: str) -> None:
        self._value = value
        self._forms = secret_forms(value)
        for form in self._forms:
            logs.register_secret(form)

    def reveal(self) -> str:
        return self._value

    def forms(self) -> tuple[str, ...]:
        """The forms of the value in use (no file is read)."""
        return self._forms

    def __repr__(self) -> str:
        return "Secret('<redacted>')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class SecretFileError(Exception):
    """A ``usertoken_file`` that cannot be used now; the message names the file."""


def read_token_file(path: Path | str) -> str:
    """The token in ``path``: a regular UTF-8 file of at most MAX_TOKEN_FILE_SIZE bytes,
    surrounding white space removed. Raises FileProblem; an empty file is one too."""
    # A byte order mark (Windows' Notepad writes one) is not part of the token.
    token = read_text(path, MAX_TOKEN_FILE_SIZE).lstrip("\ufeff").strip()
    if not token:
        raise FileProblem(path, "is empty")
    return token


class FileSecret(Secret):
    """A ``usertoken_file``: read again whenever the file changes, so a rotated token is
    used from the next request on. A mounted Kubernetes or Docker secret is replaced by a
    symlink swap, which changes the file the path resolves to; one ``stat`` per request
    notices it. While the file is missing or empty (a rotation in progress) the last
    token is kept; any other problem (not a regular file, too large, not UTF-8,
    unreadable) fails the request with SecretFileError until the file is fixed. Reading
    never blocks: see safefile.py."""

    __slots__ = ("_lock", "_retired", "_signature", "path")

    def __init__(self, path: Path, token: str | None = None) -> None:
        """``token``: the file's content as just read (config.py reads it to check it)."""
        self.path = path
        self._lock = threading.Lock()
        self._retired: tuple[str, ...] = ()
        self._signature = self._stat()
        super().__init__(read_token_file(path) if token is None else token)

    def _stat(self) -> tuple[int, ...] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)

    def reveal(self) -> str:
        signature = self._stat()
        if signature is None or signature == self._signature:
            return self._value
        with self._lock:
            if signature != self._signature:
                self._reread(signature)
        return self._value

    def _reread(self, signature: tuple[int, ...]) -> None:
        try:
            token = read_text(self.path, MAX_TOKEN_FILE_SIZE).strip()
        except FileProblem as exc:
            raise SecretFileError(
                f"usertoken_file {exc}; the account is not polled until the file holds the "
                "token (write it in place, or replace the file by a rename)"
            ) from None
        if not token:
            return  # being rewritten: keep the last token, read it again next time
        self._signature = signature
        if token != self._value:
            # The previous token stays redacted (a server may still echo it); the one
            # before it is forgotten, so rotations cannot grow the redaction for ever.
            for form in self._retired:
                logs.unregister_secret(form)
            self._retired = self._forms
            self._set(token)
            log.info(
                "usertoken_file changed: the next request uses the new token",
                extra={"fields": {"file": str(self.path)}},
            )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FileSecret) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)


# -- secrets in a URL ------------------------------------------------------------------
def _url_parts(url: str) -> tuple[urllib.parse.SplitResult, list[tuple[str, str | None]]]:
    parts = urllib.parse.urlsplit(url)
    params = [
        (name, value if sep else None)
        for name, sep, value in (item.partition("=") for item in parts.query.split("&") if item)
    ]
    return parts, params


# Query parameters whose values are credentials (registered as secrets everywhere).
_CREDENTIAL_NAME = re.compile(r"token|key|secret|pass|auth|sig|cred|session", re.I)


def url_secrets(url: str) -> tuple[str, ...]:
    """What in ``url`` is a secret: the userinfo password (the user name when there is
    no password, as in ``https://TOKEN@host/``), the values of query parameters named
    like credentials (``usertoken``, ``api_key``, ...), and the fragment. Every other
    query value is redacted where the URL is shown, but not looked for elsewhere (a
    value such as ``client=Pinpointe`` would mangle every message)."""
    parts, params = _url_parts(url)
    found: list[str] = []
    if parts.password:
        found.append(parts.password)
    elif parts.username:
        found.append(parts.username)
    found.extend(value or "" for name, value in params if _CREDENTIAL_NAME.search(name))
    found.append(parts.fragment)
    return tuple(
        {form: None for raw in found if raw for form in (raw, urllib.parse.unquote_plus(raw))}
    )


def redacted_url(url: str) -> str:
    """``url`` as it may be shown: the userinfo password (or a lone user name), every
    query value and the fragment replaced by REDACTED, the rest as written."""
    parts, params = _url_parts(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, _, password = userinfo.partition(":")
        netloc = f"{user}:{logs.REDACTED}@{host}" if password else f"{logs.REDACTED}@{host}"
    query = "&".join(
        logs.REDACTED if value is None else f"{name}={logs.REDACTED}" for name, value in params
    )
    fragment = logs.REDACTED if parts.fragment else ""
    shown = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, fragment))
    return logs.redact(shown)  # a token put in the path, say
