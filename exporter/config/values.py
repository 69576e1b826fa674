"""How each configuration value is checked: account names, URLs, user names, tokens,
groupings, autoresponder selections, field maps, CA files. Each reader takes the
ConfigReader, the raw YAML value and its key path, and raises a ConfigError naming
the path; none echoes a secret back."""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exporter import logs
from exporter.config.files import MAX_PEM_FILE_SIZE, FileProblem, check_regular
from exporter.config.keys import ConfigReader, Read
from exporter.config.secret import FileSecret, Secret, read_token_file, url_secrets
from exporter.config.yamlreader import join, kind, show
from exporter.snapshot import METRIC_KEYS

GROUPINGS = ("autoresponder", "send")
REQUEST_TYPES = ("Stats", "Autoresponders")
ACCOUNT_NAME = re.compile(r"^[a-zA-Z0-9_.-]+$")


def at_least(minimum: int) -> Read:
    return lambda reader, value, path: reader.integer(value, path, minimum)


def one_of(choices: tuple[str, ...]) -> Read:
    return lambda reader, value, path: reader.choice(value, path, choices)


def read_account_name(reader: ConfigReader, value: Any, path: str) -> str:
    name = reader.string(value, path)
    if not ACCOUNT_NAME.fullmatch(name):
        raise reader.fail(path, f"{show(name)} may contain only letters, digits, _ . and -")
    return name


def read_api_url(reader: ConfigReader, value: Any, path: str) -> str:
    url = reader.string(value, path)
    if not re.match(r"^https?://[^/\s]+", url):
        raise reader.fail(path, "must be an http:// or https:// URL")
    if "@" in url and "@" not in urllib.parse.urlsplit(url).netloc:
        raise reader.fail(
            path,
            "a user name or password in the URL must be percent-encoded (a '/', '?' or '#' "
            "in it ends the host part, which would show it)",
        )
    for secret in url_secrets(url):
        logs.register_secret(secret)
    return url


def read_username(reader: ConfigReader, value: Any, path: str) -> str:
    username = reader.string(value, path)
    problem = placeholder_problem(
        username, "user name", "set the Pinpointe user name you log in with"
    )
    if problem:
        raise reader.fail(path, problem)
    return username


def read_token(reader: ConfigReader, item: dict[str, Any], path: str) -> Secret:
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
    resolved = beside(reader.source, written).absolute()
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
    r"x{4,}|<[^>]*>|\.\.\.|…"
    # your-token, YOUR_USER_TOKEN, your-api-key, your_user_name, your-pinpointe-username
    r"|\byour[-_ ]?(?:pinpointe[-_ ]?)?(?:api[-_ ]?|user[-_ ]?)?(?:token|key|name)\b"
    r"|replace[-_ ]?(?:with|me)|change[-_ ]?me|goes[-_ ]?here"
    r"|\bpaste[-_ ](?:your|the|token|api|user|here)"
    r"|^(?:user[-_ ]?name|(?:user|api)?[-_ ]?token|api[-_ ]?key)$",
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


def read_groupings(reader: ConfigReader, value: Any, path: str) -> tuple[str, ...]:
    items = reader.sequence(value, path)
    if not items:
        raise reader.fail(path, "must list autoresponder and/or send")
    groupings: list[str] = []

    def read(index: int, grouping: Any) -> str:
        chosen = reader.choice(grouping, f"{path}[{index}]", GROUPINGS)
        if chosen in groupings:
            raise reader.fail(f"{path}[{index}]", f"{chosen} is listed twice")
        return chosen

    for index, grouping in enumerate(items):
        chosen = reader.reported(read, index, grouping)
        if chosen is not None:
            groupings.append(chosen)
    return tuple(groupings)


@dataclass(frozen=True)
class Selector:
    """One configured autoresponder: by id or by name."""

    id: int | None = None
    name: str | None = None

    def describe(self) -> str:
        return f"id={self.id}" if self.id is not None else f"name={self.name!r}"


def read_selectors(reader: ConfigReader, value: Any, path: str) -> tuple[Selector, ...]:
    selectors: dict[Selector, None] = {}

    def read(where: str, raw: Any) -> Selector:
        item = reader.mapping(raw, where, ("id", "name"))
        if len(item) != 1:
            raise reader.fail(where, "give exactly one of id or name")
        if "id" in item:
            selector = Selector(id=reader.integer(item["id"], f"{where}.id", 0))
        else:
            selector = Selector(name=reader.string(item["name"], f"{where}.name"))
        if selector in selectors:
            raise reader.fail(where, f"{selector.describe()} is listed twice")
        return selector

    for index, raw in enumerate(reader.sequence(value, path)):
        selector = reader.reported(read, f"{path}[{index}]", raw)
        if selector is not None:
            selectors[selector] = None
    return tuple(selectors)


def read_field_map(reader: ConfigReader, value: Any, path: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        raise reader.fail(path, f"must be a mapping of API field to metric, got {kind(value)}")
    pairs: dict[str, str] = {}

    def read(api_field: Any, target: Any) -> tuple[str, str]:
        where = join(path, str(api_field))
        if not isinstance(api_field, str) or not api_field.strip():
            raise reader.fail(where, "API field names must be non-empty strings")
        if api_field.strip().lower() in pairs:
            raise reader.fail(where, "given twice (field names are case-insensitive)")
        if target not in METRIC_KEYS:
            raise reader.fail(where, f"must be one of {', '.join(METRIC_KEYS)}, got {show(target)}")
        return api_field.strip().lower(), target

    for api_field, target in value.items():
        pair = reader.reported(read, api_field, target)
        if pair is not None:
            pairs[pair[0]] = pair[1]
    return tuple(pairs.items())


def read_ca_file(reader: ConfigReader, value: Any, path: str) -> str:
    ca_file = str(beside(reader.source, reader.string(value, path)))
    if not Path(ca_file).exists():
        raise reader.fail(path, f"file {ca_file} does not exist")
    try:
        check_regular(ca_file, MAX_PEM_FILE_SIZE)
    except FileProblem as exc:
        raise reader.fail(path, f"file {exc}") from None
    return ca_file


def beside(source: str, path: str) -> Path:
    """A path from the configuration: relative paths are relative to the file itself."""
    resolved = Path(path)
    return resolved if resolved.is_absolute() else Path(source).parent / resolved
