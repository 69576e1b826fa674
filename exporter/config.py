"""The YAML configuration file, validated into frozen settings.

Every problem is reported as ``<file>: <key path>: <what is wrong>`` so a user can
find it without reading code; the loader never echoes a secret value back.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from exporter import logs
from exporter.snapshot import METRIC_KEYS

log = logging.getLogger("exporter.config")

GROUPINGS = ("autoresponder", "send")
REQUEST_TYPES = ("Stats", "Autoresponders")
ACCOUNT_NAME = re.compile(r"^[a-zA-Z0-9_.-]+$")
_DURATION = re.compile(
    r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$"
)
_DURATION_UNITS = (365 * 86400.0, 7 * 86400.0, 86400.0, 3600.0, 60.0, 1.0, 0.001)
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigError(Exception):
    """A configuration problem, already phrased for the user."""


class Secret:
    """A string that never shows itself in repr, str or formatting."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def forms(self) -> tuple[str, ...]:
        """The value as it may appear in text: raw, and escaped as JSON (PHP escapes "/")."""
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


@dataclass(frozen=True)
class Selector:
    """One configured autoresponder: by id or by name."""

    id: int | None = None
    name: str | None = None

    def describe(self) -> str:
        return f"id={self.id}" if self.id is not None else f"name={self.name!r}"


@dataclass(frozen=True)
class AccountConfig:
    name: str
    api_url: str
    username: str
    usertoken: Secret = field(repr=False)
    poll_interval: float
    timeout: float
    stale_after: float
    request_type: str = "Stats"
    # False when request_type is given in the file: the other type is then never tried.
    # Not compared: pinning the type that is in use already changes nothing.
    probe_request_type: bool = field(default=True, compare=False)
    groupings: tuple[str, ...] = ("autoresponder",)
    page_size: int = 100
    autoresponders: tuple[Selector, ...] = ()
    max_sends_per_autoresponder: int = 50
    field_map: tuple[tuple[str, str], ...] = ()
    ca_file: str | None = None
    tls_insecure_skip_verify: bool = False


@dataclass(frozen=True)
class Settings:
    accounts: tuple[AccountConfig, ...]
    poll_interval: float = 300.0
    timeout: float = 30.0
    stale_after: float = 900.0
    max_concurrency: int = 4


def parse_duration(text: str) -> float:
    """Parse a Prometheus-style duration (``90s``, ``5m``, ``1h30m``) into seconds."""
    match = _DURATION.match(text.strip()) if text.strip() else None
    if match is None:
        raise ValueError(f"invalid duration {text!r}: use a Prometheus duration like 30s, 5m or 1h")
    return sum(
        int(part) * unit
        for part, unit in zip(match.groups(), _DURATION_UNITS, strict=False)
        if part is not None
    )


def format_duration(seconds: float) -> str:
    if seconds >= 1 and float(seconds).is_integer():
        whole = int(seconds)
        for unit, size in (("h", 3600), ("m", 60)):
            if whole % size == 0:
                return f"{whole // size}{unit}"
        return f"{whole}s"
    return f"{round(seconds * 1000)}ms"


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that rejects a key given twice in one mapping."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is given twice", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


class _Reader:
    """Walks the parsed YAML and turns every problem into a ConfigError with its key path."""

    def __init__(self, source: str, environ: dict[str, str]) -> None:
        self.source = source
        self.environ = environ

    def fail(self, path: str, problem: str) -> ConfigError:
        return ConfigError(
            f"{self.source}: {path}: {problem}" if path else f"{self.source}: {problem}"
        )

    def mapping(self, value: Any, path: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"must be a mapping, got {_kind(value)}")
        for key in value:
            if not isinstance(key, str) or key not in allowed:
                hint = difflib.get_close_matches(str(key), allowed, n=1)
                suggestion = f" (did you mean {hint[0]}?)" if hint else ""
                raise self.fail(_join(path, str(key)), f"unknown key{suggestion}")
        return value

    def string(self, value: Any, path: str) -> str:
        if not isinstance(value, str):
            raise self.fail(path, f"must be a string, got {_kind(value)}")
        expanded = self.expand(value, path)
        if not expanded.strip():
            raise self.fail(path, "must not be empty")
        return expanded

    def expand(self, value: str, path: str) -> str:
        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self.environ:
                raise self.fail(path, f"environment variable {name} is not set")
            return self.environ[name]

        return _ENV_REF.sub(substitute, value)

    def duration(self, value: Any, path: str) -> float:
        if not isinstance(value, str):
            raise self.fail(path, f"must be a duration like 30s, 5m or 1h, got {_kind(value)}")
        try:
            seconds = parse_duration(self.expand(value, path))
        except ValueError as exc:
            raise self.fail(path, str(exc)) from None
        if seconds <= 0:
            raise self.fail(path, "must be longer than 0s")
        return seconds

    def integer(self, value: Any, path: str, minimum: int) -> int:
        if isinstance(value, str) and _ENV_REF.search(value):
            expanded = self.expand(value, path).strip()
            if not re.fullmatch(r"[+-]?\d+", expanded):
                raise self.fail(path, f"must be an integer, got {expanded!r} from the environment")
            value = int(expanded)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"must be an integer, got {_kind(value)}")
        if value < minimum:
            raise self.fail(path, f"must be at least {minimum}, got {value}")
        return value

    def boolean(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(path, f"must be true or false, got {_kind(value)}")
        return value

    def choice(self, value: Any, path: str, choices: tuple[str, ...]) -> str:
        if value not in choices:
            raise self.fail(path, f"must be one of {', '.join(choices)}, got {value!r}")
        return str(value)

    def sequence(self, value: Any, path: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(path, f"must be a list, got {_kind(value)}")
        return value


_TOP_KEYS = ("poll_interval", "timeout", "stale_after", "max_concurrency", "accounts")
_ACCOUNT_KEYS = (
    "name",
    "api_url",
    "username",
    "usertoken",
    "usertoken_file",
    "request_type",
    "groupings",
    "page_size",
    "autoresponders",
    "max_sends_per_autoresponder",
    "field_map",
    "poll_interval",
    "ca_file",
    "tls_insecure_skip_verify",
)


def load_config(path: str, environ: dict[str, str] | None = None) -> Settings:
    """Read and validate the configuration file; raise ConfigError naming what is wrong."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration file: {exc.strerror}") from None
    return parse_config(text, path, dict(os.environ) if environ is None else environ)


def parse_config(text: str, source: str, environ: dict[str, str]) -> Settings:
    reader = _Reader(source, environ)
    try:
        document = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise reader.fail("", f"invalid YAML{where}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise reader.fail("", f"invalid YAML: {exc}") from None
    if document is None:
        raise reader.fail("accounts", "required")
    top = reader.mapping(document, "", _TOP_KEYS)
    poll_interval = reader.duration(top.get("poll_interval", "5m"), "poll_interval")
    timeout = reader.duration(top.get("timeout", "30s"), "timeout")
    stale_after = reader.duration(top.get("stale_after", "15m"), "stale_after")
    max_concurrency = reader.integer(top.get("max_concurrency", 4), "max_concurrency", 1)
    if "accounts" not in top:
        raise reader.fail("accounts", "required")
    raw_accounts = reader.sequence(top["accounts"], "accounts")
    if not raw_accounts:
        raise reader.fail("accounts", "must list at least one account")
    accounts: list[AccountConfig] = []
    names: set[str] = set()
    for index, raw in enumerate(raw_accounts):
        account = _read_account(
            reader, raw, f"accounts[{index}]", poll_interval, timeout, stale_after, source
        )
        if account.name in names:
            raise reader.fail(f"accounts[{index}].name", f"duplicate account name {account.name!r}")
        names.add(account.name)
        accounts.append(account)
    return Settings(
        accounts=tuple(accounts),
        poll_interval=poll_interval,
        timeout=timeout,
        stale_after=stale_after,
        max_concurrency=max_concurrency,
    )


def _read_account(
    reader: _Reader,
    raw: Any,
    path: str,
    default_interval: float,
    timeout: float,
    stale_after: float,
    source: str,
) -> AccountConfig:
    item = reader.mapping(raw, path, _ACCOUNT_KEYS)
    for key in ("name", "api_url", "username"):
        if key not in item:
            raise reader.fail(f"{path}.{key}", "required")
    name = reader.string(item["name"], f"{path}.name")
    if not ACCOUNT_NAME.match(name):
        raise reader.fail(f"{path}.name", f"{name!r} may contain only letters, digits, _ . and -")
    api_url = reader.string(item["api_url"], f"{path}.api_url")
    if not re.match(r"^https?://[^/\s]+", api_url):
        raise reader.fail(f"{path}.api_url", "must be an http:// or https:// URL")
    username = reader.string(item["username"], f"{path}.username")
    token = _read_token(reader, item, path, source)

    request_type = reader.choice(
        item.get("request_type", "Stats"), f"{path}.request_type", REQUEST_TYPES
    )
    groupings = _read_groupings(reader, item.get("groupings", ["autoresponder"]), path)
    page_size = reader.integer(item.get("page_size", 100), f"{path}.page_size", 0)
    selectors = _read_selectors(reader, item.get("autoresponders", []), f"{path}.autoresponders")
    max_sends = reader.integer(
        item.get("max_sends_per_autoresponder", 50), f"{path}.max_sends_per_autoresponder", 0
    )
    field_map = _read_field_map(reader, item.get("field_map", {}), f"{path}.field_map")
    interval = default_interval
    interval_key = "poll_interval"
    if "poll_interval" in item:
        interval_key = f"{path}.poll_interval"
        interval = reader.duration(item["poll_interval"], interval_key)
    if interval > stale_after:
        raise reader.fail(
            interval_key,
            f"{format_duration(interval)} is longer than stale_after "
            f"({format_duration(stale_after)}): data would go stale between polls",
        )
    ca_file = None
    if "ca_file" in item:
        ca_file = str(_beside(source, reader.string(item["ca_file"], f"{path}.ca_file")))
        if not Path(ca_file).is_file():
            raise reader.fail(f"{path}.ca_file", f"file {ca_file} does not exist")
    insecure = reader.boolean(
        item.get("tls_insecure_skip_verify", False), f"{path}.tls_insecure_skip_verify"
    )
    return AccountConfig(
        name=name,
        api_url=api_url,
        username=username,
        usertoken=token,
        poll_interval=interval,
        timeout=timeout,
        stale_after=stale_after,
        request_type=request_type,
        probe_request_type="request_type" not in item,
        groupings=groupings,
        page_size=page_size,
        autoresponders=selectors,
        max_sends_per_autoresponder=max_sends,
        field_map=field_map,
        ca_file=ca_file,
        tls_insecure_skip_verify=insecure,
    )


def _read_token(reader: _Reader, item: dict[str, Any], path: str, source: str) -> Secret:
    if "usertoken" in item and "usertoken_file" in item:
        raise reader.fail(f"{path}.usertoken", "give usertoken or usertoken_file, not both")
    if "usertoken" in item:
        token = reader.string(item["usertoken"], f"{path}.usertoken")
        problem = placeholder_problem(token)
        if problem:
            raise reader.fail(f"{path}.usertoken", problem)
        return Secret(token)
    if "usertoken_file" not in item:
        raise reader.fail(f"{path}.usertoken", "required (or usertoken_file)")
    token_path = reader.string(item["usertoken_file"], f"{path}.usertoken_file")
    resolved = _beside(source, token_path)
    try:
        token = resolved.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise reader.fail(
            f"{path}.usertoken_file", f"cannot read {token_path}: {exc.strerror}"
        ) from None
    if not token:
        raise reader.fail(f"{path}.usertoken_file", f"{token_path} is empty")
    problem = placeholder_problem(token)
    if problem:
        raise reader.fail(f"{path}.usertoken_file", f"{token_path}: {problem}")
    return FileSecret(resolved.absolute())


_BARE_VAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_PLACEHOLDERS = re.compile(
    r"x{4,}|<[^>]*>|\.\.\.|…|\byour[-_ ]?(?:api[-_ ]?|user)?token\b|replace[-_ ]?with|"
    r"change[-_ ]?me",
    re.I,
)


def placeholder_problem(token: str) -> str | None:
    """Why ``token`` looks like a placeholder rather than a real token; None if it does not.
    The message never repeats the token itself."""
    bare = _BARE_VAR.fullmatch(token)
    if bare:
        name = bare.group(1)
        return (
            f"${name} is not expanded: write ${{{name}}} (with braces) to read the environment "
            f"variable {name}"
        )
    if "${" in token:
        return "holds an unexpanded ${...} reference, not a token"
    if _PLACEHOLDERS.search(token):
        return (
            "looks like a placeholder (xxxx…, <...>, your-token), not a token: set the API "
            "token from Account Settings => API + Connectors"
        )
    return None


def _read_groupings(reader: _Reader, value: Any, path: str) -> tuple[str, ...]:
    items = reader.sequence(value, f"{path}.groupings")
    if not items:
        raise reader.fail(f"{path}.groupings", "must list autoresponder and/or send")
    groupings: list[str] = []
    for index, grouping in enumerate(items):
        chosen = reader.choice(grouping, f"{path}.groupings[{index}]", GROUPINGS)
        if chosen in groupings:
            raise reader.fail(f"{path}.groupings[{index}]", f"{chosen} is listed twice")
        groupings.append(chosen)
    return tuple(groupings)


def _read_selectors(reader: _Reader, value: Any, path: str) -> tuple[Selector, ...]:
    selectors: list[Selector] = []
    for index, raw in enumerate(reader.sequence(value, path)):
        where = f"{path}[{index}]"
        item = reader.mapping(raw, where, ("id", "name"))
        if len(item) != 1:
            raise reader.fail(where, "give exactly one of id or name")
        if "id" in item:
            selector = Selector(id=reader.integer(item["id"], f"{where}.id", 0))
        else:
            selector = Selector(name=reader.string(item["name"], f"{where}.name"))
        if selector in selectors:
            raise reader.fail(where, f"{selector.describe()} is listed twice")
        selectors.append(selector)
    return tuple(selectors)


def _read_field_map(reader: _Reader, value: Any, path: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        raise reader.fail(path, f"must be a mapping of API field to metric, got {_kind(value)}")
    pairs: list[tuple[str, str]] = []
    for api_field, target in value.items():
        where = _join(path, str(api_field))
        if not isinstance(api_field, str) or not api_field.strip():
            raise reader.fail(where, "API field names must be non-empty strings")
        if any(api == api_field.strip().lower() for api, _ in pairs):
            raise reader.fail(where, "given twice (field names are case-insensitive)")
        if target not in METRIC_KEYS:
            raise reader.fail(where, f"must be one of {', '.join(METRIC_KEYS)}, got {target!r}")
        pairs.append((api_field.strip().lower(), target))
    return tuple(pairs)


def _beside(source: str, path: str) -> Path:
    """A path from the configuration: relative paths are relative to the file itself."""
    resolved = Path(path)
    return resolved if resolved.is_absolute() else Path(source).parent / resolved


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
    }.get(type(value), type(value).__name__)
