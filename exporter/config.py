"""The YAML configuration file, validated into frozen settings.

Every problem is reported as ``<file>: <key path>: <what is wrong>`` so a user can
find it without reading code; the loader never echoes a secret value back.

Each key is defined once, as a dataclass field: ``option(read, default)`` says how
its YAML value is checked and what it is when absent (no default: required). The
allowed keys, their defaults and the reading all follow from those fields, so adding
a key is one field. An account field made with ``inherit()`` takes the top-level
setting of the same name (``override=True``: the account may set its own).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from exporter.secret import FileSecret as FileSecret  # re-exported: the settings hold them
from exporter.secret import Secret as Secret
from exporter.sizes import parse_size
from exporter.snapshot import METRIC_KEYS
from exporter.yamlreader import Reader, join, kind

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


class _Reader(Reader):
    """The shared reader, plus ``${VAR}`` expansion in strings and durations."""

    def __init__(self, source: str, environ: dict[str, str]) -> None:
        super().__init__(source, ConfigError)
        self.environ = environ

    def string(self, value: Any, path: str) -> str:
        if not isinstance(value, str):
            raise self.fail(path, f"must be a string, got {kind(value)}")
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
            raise self.fail(path, f"must be a duration like 30s, 5m or 1h, got {kind(value)}")
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
        return super().integer(value, path, minimum)

    def size(self, value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise self.fail(path, f"must be a size like 16KiB or 8MiB, got {kind(value)}")
        try:
            size = value if isinstance(value, int) else parse_size(self.expand(value, path))
        except ValueError as exc:
            raise self.fail(path, str(exc)) from None
        if size < 1:
            raise self.fail(path, "must be at least 1 byte")
        return size


# -- how a key is read -----------------------------------------------------------------
Read = Callable[[_Reader, Any, str], Any]
ReadItem = Callable[[_Reader, dict[str, Any], str], Any]


@dataclass(frozen=True)
class Option:
    """A configuration key: ``read`` checks its value (or ``read_item`` the whole mapping,
    for a key with alternatives such as usertoken/usertoken_file, listed in ``also``);
    ``inherit``: an account field whose value is the top-level setting of the same name,
    which the account may override when ``override``."""

    read: Read | None = None
    read_item: ReadItem | None = None
    also: tuple[str, ...] = ()
    inherit: bool = False
    override: bool = False

    def keys(self, name: str) -> tuple[str, ...]:
        return (name, *self.also) if (self.override or not self.inherit) else ()


def option(
    read: Read | None = None,
    default: Any = MISSING,
    *,
    read_item: ReadItem | None = None,
    also: tuple[str, ...] = (),
    repr: bool = True,
) -> Any:
    """A field that is a YAML key; without a default the key is required."""
    metadata = {"option": Option(read, read_item, also)}
    return field(default=default, repr=repr, metadata=metadata)


def inherit(default: Any = MISSING, override: bool = False) -> Any:
    """An account field holding the top-level setting of the same name (``default``: its
    value when an AccountConfig is made in code, taken from Settings so it is written once)."""
    return field(default=default, metadata={"option": Option(inherit=True, override=override)})


def _at_least(minimum: int) -> Read:
    return lambda reader, value, path: reader.integer(value, path, minimum)


def _one_of(choices: tuple[str, ...]) -> Read:
    return lambda reader, value, path: reader.choice(value, path, choices)


def _account_name(reader: _Reader, value: Any, path: str) -> str:
    name = reader.string(value, path)
    if not ACCOUNT_NAME.match(name):
        raise reader.fail(path, f"{name!r} may contain only letters, digits, _ . and -")
    return name


def _api_url(reader: _Reader, value: Any, path: str) -> str:
    url = reader.string(value, path)
    if not re.match(r"^https?://[^/\s]+", url):
        raise reader.fail(path, "must be an http:// or https:// URL")
    return url


def _read_token(reader: _Reader, item: dict[str, Any], path: str) -> Secret:
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
    resolved = _beside(reader.source, token_path)
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
    items = reader.sequence(value, path)
    if not items:
        raise reader.fail(path, "must list autoresponder and/or send")
    groupings: list[str] = []
    for index, grouping in enumerate(items):
        chosen = reader.choice(grouping, f"{path}[{index}]", GROUPINGS)
        if chosen in groupings:
            raise reader.fail(f"{path}[{index}]", f"{chosen} is listed twice")
        groupings.append(chosen)
    return tuple(groupings)


@dataclass(frozen=True)
class Selector:
    """One configured autoresponder: by id or by name."""

    id: int | None = None
    name: str | None = None

    def describe(self) -> str:
        return f"id={self.id}" if self.id is not None else f"name={self.name!r}"


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
        raise reader.fail(path, f"must be a mapping of API field to metric, got {kind(value)}")
    pairs: list[tuple[str, str]] = []
    for api_field, target in value.items():
        where = join(path, str(api_field))
        if not isinstance(api_field, str) or not api_field.strip():
            raise reader.fail(where, "API field names must be non-empty strings")
        if any(api == api_field.strip().lower() for api, _ in pairs):
            raise reader.fail(where, "given twice (field names are case-insensitive)")
        if target not in METRIC_KEYS:
            raise reader.fail(where, f"must be one of {', '.join(METRIC_KEYS)}, got {target!r}")
        pairs.append((api_field.strip().lower(), target))
    return tuple(pairs)


def _ca_file(reader: _Reader, value: Any, path: str) -> str:
    ca_file = str(_beside(reader.source, reader.string(value, path)))
    if not Path(ca_file).is_file():
        raise reader.fail(path, f"file {ca_file} does not exist")
    return ca_file


# -- the settings ----------------------------------------------------------------------
# poll_timeout defaults to the account's poll interval, but at least this.
MIN_POLL_TIMEOUT = 60.0


@dataclass(frozen=True, kw_only=True)
class Settings:
    poll_interval: float = option(_Reader.duration, 300.0)
    timeout: float = option(_Reader.duration, 30.0)
    stale_after: float = option(_Reader.duration, 900.0)
    max_concurrency: int = option(_at_least(1), 4)
    poll_timeout: float | None = option(_Reader.duration, None)  # None: see MIN_POLL_TIMEOUT
    max_record_size: int = option(_Reader.size, 16 * 1024)
    max_page_size: int = option(_Reader.size, 8 * 1024 * 1024)
    max_label_length: int = option(_at_least(16), 1024)
    accounts: tuple[AccountConfig, ...] = option()  # read by parse_config


@dataclass(frozen=True, kw_only=True)
class AccountConfig:
    name: str = option(_account_name)
    api_url: str = option(_api_url)
    username: str = option(_Reader.string)
    usertoken: Secret = option(read_item=_read_token, also=("usertoken_file",), repr=False)  # noqa: RUF009
    request_type: str = option(_one_of(REQUEST_TYPES), "Stats")
    # False when request_type is given in the file: the other type is then never tried.
    # Not compared: pinning the type that is in use already changes nothing.
    probe_request_type: bool = field(default=True, compare=False)
    groupings: tuple[str, ...] = option(_read_groupings, ("autoresponder",))
    page_size: int = option(_at_least(0), 100)
    autoresponders: tuple[Selector, ...] = option(_read_selectors, ())
    max_sends_per_autoresponder: int = option(_at_least(0), 50)
    field_map: tuple[tuple[str, str], ...] = option(_read_field_map, ())
    poll_interval: float = inherit(override=True)
    timeout: float = inherit()
    stale_after: float = inherit()
    ca_file: str | None = option(_ca_file, None)
    tls_insecure_skip_verify: bool = option(_Reader.boolean, False)
    # Bounds against a hostile or broken server (README "Reliability and security"),
    # the top-level keys of the same names.
    poll_timeout: float = inherit(max(Settings.poll_interval, MIN_POLL_TIMEOUT))  # see Settings
    max_record_size: int = inherit(Settings.max_record_size)
    max_page_size: int = inherit(Settings.max_page_size)
    max_label_length: int = inherit(Settings.max_label_length)


def _option(spec: Any) -> Option | None:
    found = spec.metadata.get("option")
    return found if isinstance(found, Option) else None


def allowed_keys(cls: type) -> tuple[str, ...]:
    """The YAML keys of a settings class, in the order of its fields."""
    keys: list[str] = []
    for spec in fields(cls):
        found = _option(spec)
        if found is not None:
            keys.extend(found.keys(spec.name))
    return tuple(keys)


def _read_fields(
    reader: _Reader, cls: type, item: dict[str, Any], path: str, top: dict[str, Any]
) -> dict[str, Any]:
    """Every field of ``cls`` from ``item``: read when given, else the top-level value
    (inherited fields) or the default; a field with neither is required."""
    values: dict[str, Any] = {}
    for spec in fields(cls):
        found = _option(spec)
        if found is None:
            continue
        key = join(path, spec.name)
        if found.read_item is not None:
            values[spec.name] = found.read_item(reader, item, path)
        elif spec.name in item and (found.override or not found.inherit):
            read = found.read or _option_of(Settings, spec.name).read
            if read is not None:
                values[spec.name] = read(reader, item[spec.name], key)
        elif found.inherit:
            values[spec.name] = top[spec.name]
        elif spec.default is MISSING:
            raise reader.fail(key, "required")
        else:
            values[spec.name] = spec.default
    return values


def _option_of(cls: type, name: str) -> Option:
    spec = next(s for s in fields(cls) if s.name == name)
    found = _option(spec)
    assert found is not None
    return found


# -- reading a file ----------------------------------------------------------------------
def load_config(path: str, environ: dict[str, str] | None = None) -> Settings:
    """Read and validate the configuration file; raise ConfigError naming what is wrong."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration file: {exc.strerror}") from None
    return parse_config(text, path, dict(os.environ) if environ is None else environ)


def parse_config(text: str, source: str, environ: dict[str, str]) -> Settings:
    reader = _Reader(source, environ)
    document = reader.load(text)
    if document is None:
        raise reader.fail("accounts", "required")
    top = reader.mapping(document, "", allowed_keys(Settings))
    values = _read_fields(reader, Settings, top, "", {})
    raw_accounts = reader.sequence(top["accounts"], "accounts")
    if not raw_accounts:
        raise reader.fail("accounts", "must list at least one account")
    accounts: list[AccountConfig] = []
    names: set[str] = set()
    for index, raw in enumerate(raw_accounts):
        account = _read_account(reader, raw, f"accounts[{index}]", values)
        if account.name in names:
            raise reader.fail(f"accounts[{index}].name", f"duplicate account name {account.name!r}")
        names.add(account.name)
        accounts.append(account)
    values["accounts"] = tuple(accounts)
    return Settings(**values)


def _read_account(reader: _Reader, raw: Any, path: str, top: dict[str, Any]) -> AccountConfig:
    item = reader.mapping(raw, path, allowed_keys(AccountConfig))
    values = _read_fields(reader, AccountConfig, item, path, top)
    if values["poll_timeout"] is None:
        values["poll_timeout"] = max(values["poll_interval"], MIN_POLL_TIMEOUT)
    account = AccountConfig(**values, probe_request_type="request_type" not in item)
    interval_key = f"{path}.poll_interval" if "poll_interval" in item else "poll_interval"
    if account.poll_interval > account.stale_after:
        raise reader.fail(
            interval_key,
            f"{format_duration(account.poll_interval)} is longer than stale_after "
            f"({format_duration(account.stale_after)}): data would go stale between polls",
        )
    return account


def _beside(source: str, path: str) -> Path:
    """A path from the configuration: relative paths are relative to the file itself."""
    resolved = Path(path)
    return resolved if resolved.is_absolute() else Path(source).parent / resolved
