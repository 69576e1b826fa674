"""The YAML configuration file, validated into frozen settings.

Every problem is reported as ``<file>: <key path>: <what is wrong>`` so a user can
find it without reading code; the loader never echoes a secret value back. How each
key is defined and read (``option``, ``inherit``) is in exporter.configkeys.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exporter import logs
from exporter.configkeys import ConfigError as ConfigError  # re-exported: callers catch it
from exporter.configkeys import (
    ConfigReader,
    Read,
    allowed_keys,
    inherit,
    option,
    read_fields,
)
from exporter.durations import format_duration as format_duration  # re-exported
from exporter.durations import parse_duration as parse_duration
from exporter.safefile import FileProblem, read_text
from exporter.secret import FileSecret as FileSecret  # re-exported: the settings hold them
from exporter.secret import Secret as Secret
from exporter.secret import read_token_file, redacted_url, url_secrets
from exporter.snapshot import METRIC_KEYS
from exporter.yamlreader import join, kind

GROUPINGS = ("autoresponder", "send")
REQUEST_TYPES = ("Stats", "Autoresponders")
ACCOUNT_NAME = re.compile(r"^[a-zA-Z0-9_.-]+$")


def _at_least(minimum: int) -> Read:
    return lambda reader, value, path: reader.integer(value, path, minimum)


def _one_of(choices: tuple[str, ...]) -> Read:
    return lambda reader, value, path: reader.choice(value, path, choices)


def _account_name(reader: ConfigReader, value: Any, path: str) -> str:
    name = reader.string(value, path)
    if not ACCOUNT_NAME.fullmatch(name):
        raise reader.fail(path, f"{name!r} may contain only letters, digits, _ . and -")
    return name


def _api_url(reader: ConfigReader, value: Any, path: str) -> str:
    url = reader.string(value, path)
    if not re.match(r"^https?://[^/\s]+", url):
        raise reader.fail(path, "must be an http:// or https:// URL")
    for secret in url_secrets(url):
        logs.register_secret(secret)
    return url


def _username(reader: ConfigReader, value: Any, path: str) -> str:
    username = reader.string(value, path)
    problem = placeholder_problem(
        username, "user name", "set the Pinpointe user name you log in with"
    )
    if problem:
        raise reader.fail(path, problem)
    return username


def _read_token(reader: ConfigReader, item: dict[str, Any], path: str) -> Secret:
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
    key = f"{path}.usertoken_file"
    written = reader.string(item["usertoken_file"], key)
    resolved = _beside(reader.source, written).absolute()
    try:
        token = read_token_file(resolved)
    except FileProblem as exc:
        raise reader.fail(key, f"{written} {exc.problem}") from None
    problem = placeholder_problem(token)
    if problem:
        raise reader.fail(key, f"{written}: {problem}")
    return FileSecret(resolved, token)


_BARE_VAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_PLACEHOLDERS = re.compile(
    r"x{4,}|<[^>]*>|\.\.\.|…|\byour[-_ ]?(?:api[-_ ]?|user)?token\b|replace[-_ ]?with|"
    r"change[-_ ]?me",
    re.I,
)


TOKEN_ADVICE = "set the API token from Account Settings => API + Connectors"


def placeholder_problem(value: str, what: str = "token", advice: str = TOKEN_ADVICE) -> str | None:
    """Why ``value`` (a token, a user name: ``what``) looks like a placeholder rather than
    a real one, ending in ``advice``; None if it does not. The message never repeats it."""
    bare = _BARE_VAR.fullmatch(value)
    if bare:
        name = bare.group(1)
        return (
            f"${name} is not expanded: write ${{{name}}} (with braces) to read the environment "
            f"variable {name}"
        )
    if "${" in value:
        return f"holds an unexpanded ${{...}} reference, not a {what}"
    if _PLACEHOLDERS.search(value):
        return (
            f"looks like a placeholder (xxxx…, <...>, your-{what.replace(' ', '')}, "
            f"replace-with-…), not a {what}: {advice}"
        )
    return None


def _read_groupings(reader: ConfigReader, value: Any, path: str) -> tuple[str, ...]:
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


def _read_selectors(reader: ConfigReader, value: Any, path: str) -> tuple[Selector, ...]:
    selectors: dict[Selector, None] = {}
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
        selectors[selector] = None
    return tuple(selectors)


def _read_field_map(reader: ConfigReader, value: Any, path: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        raise reader.fail(path, f"must be a mapping of API field to metric, got {kind(value)}")
    pairs: dict[str, str] = {}
    for api_field, target in value.items():
        where = join(path, str(api_field))
        if not isinstance(api_field, str) or not api_field.strip():
            raise reader.fail(where, "API field names must be non-empty strings")
        if api_field.strip().lower() in pairs:
            raise reader.fail(where, "given twice (field names are case-insensitive)")
        if target not in METRIC_KEYS:
            raise reader.fail(where, f"must be one of {', '.join(METRIC_KEYS)}, got {target!r}")
        pairs[api_field.strip().lower()] = target
    return tuple(pairs.items())


def _ca_file(reader: ConfigReader, value: Any, path: str) -> str:
    ca_file = str(_beside(reader.source, reader.string(value, path)))
    if not Path(ca_file).is_file():
        raise reader.fail(path, f"file {ca_file} does not exist")
    return ca_file


# -- the settings ----------------------------------------------------------------------
# poll_timeout defaults to the account's poll interval, but at least this.
MIN_POLL_TIMEOUT = 60.0


@dataclass(frozen=True, kw_only=True)
class Settings:
    poll_interval: float = option(ConfigReader.duration, 300.0)
    timeout: float = option(ConfigReader.duration, 30.0)
    stale_after: float = option(ConfigReader.duration, 900.0)
    max_concurrency: int = option(_at_least(1), 4)
    poll_timeout: float | None = option(ConfigReader.duration, None)  # None: see MIN_POLL_TIMEOUT
    max_record_size: int = option(ConfigReader.size, 16 * 1024)
    max_page_size: int = option(ConfigReader.size, 8 * 1024 * 1024)
    max_label_length: int = option(_at_least(16), 1024)
    max_exposition_size: int = option(ConfigReader.size, 64 * 1024 * 1024)
    accounts: tuple[AccountConfig, ...] = option()  # read by parse_config


@dataclass(frozen=True, kw_only=True)
class AccountConfig:
    name: str = option(_account_name)
    api_url: str = option(_api_url)
    username: str = option(_username)
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
    tls_insecure_skip_verify: bool = option(ConfigReader.boolean, False)
    # Bounds against a hostile or broken server (README "Reliability and security"),
    # the top-level keys of the same names.
    poll_timeout: float = inherit(max(Settings.poll_interval, MIN_POLL_TIMEOUT))  # see Settings
    max_record_size: int = inherit(Settings.max_record_size)
    max_page_size: int = inherit(Settings.max_page_size)
    max_label_length: int = inherit(Settings.max_label_length)
    max_exposition_size: int = inherit(Settings.max_exposition_size, override=True)

    @property
    def shown_url(self) -> str:
        """``api_url`` as it may be shown: any password or query value redacted."""
        return redacted_url(self.api_url)


# -- reading a file ----------------------------------------------------------------------
# A configuration file larger than this is refused (8,000 autoresponders take 200 KB).
MAX_CONFIG_FILE_SIZE = 16 * 1024 * 1024


def load_config(path: str, environ: dict[str, str] | None = None) -> Settings:
    """Read and validate the configuration file; raise ConfigError naming every problem.

    Whatever the file holds (any bytes, any YAML), the only exception is ConfigError."""
    try:
        text = read_text(path, MAX_CONFIG_FILE_SIZE)
    except FileProblem as exc:
        raise ConfigError(f"{path}: the configuration file {exc.problem}") from None
    return parse_config(text, path, dict(os.environ) if environ is None else environ)


def parse_config(text: str, source: str, environ: dict[str, str]) -> Settings:
    reader = ConfigReader(source, environ)
    document = reader.load(text)
    if document is None:
        raise reader.fail("accounts", "required")
    top = reader.mapping(document, "", allowed_keys(Settings))
    values = read_fields(reader, Settings, top, "", {}, Settings)
    accounts: list[AccountConfig] = []
    if "accounts" in top:
        accounts = _read_accounts(reader, top["accounts"], values)
    reader.check()
    values["accounts"] = tuple(accounts)
    return Settings(**values)


def _read_accounts(reader: ConfigReader, raw: Any, top: dict[str, Any]) -> list[AccountConfig]:
    raw_accounts = reader.sequence(raw, "accounts")
    if not raw_accounts:
        raise reader.fail("accounts", "must list at least one account")
    accounts: list[AccountConfig] = []
    names: set[str] = set()
    for index, item in enumerate(raw_accounts):
        try:
            account = _read_account(reader, item, f"accounts[{index}]", top)
        except ConfigError as exc:
            reader.report(exc)
            continue
        if account is None:
            continue
        if account.name in names:
            reader.report(
                reader.fail(f"accounts[{index}].name", f"duplicate account name {account.name!r}")
            )
        names.add(account.name)
        accounts.append(account)
    return accounts


def _read_account(
    reader: ConfigReader, raw: Any, path: str, top: dict[str, Any]
) -> AccountConfig | None:
    """The account at ``path``, or None when a problem was reported for it."""
    before = reader.failures()
    item = reader.mapping(raw, path, allowed_keys(AccountConfig))
    values = read_fields(reader, AccountConfig, item, path, top, Settings)
    if reader.failures() > before:
        return None
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
