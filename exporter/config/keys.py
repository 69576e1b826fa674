"""How a configuration key is defined and read.

Each key is defined once, as a dataclass field: ``option(read, default)`` says how
its YAML value is checked and what it is when absent (no default: required). The
allowed keys, their defaults and the reading all follow from those fields, so adding
a key is one field. An account field made with ``inherit()`` takes the top-level
setting of the same name (``override=True``: the account may set its own).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any, TypeVar

from exporter import logs
from exporter.config.units import parse_duration, parse_size
from exporter.config.yamlreader import Reader, join, kind, show

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


T = TypeVar("T")


class ConfigError(Exception):
    """Configuration problems, already phrased for the user: one per line, each
    ``<file>: <key path>: <what is wrong>``. A value quoted in a problem may be a secret
    met earlier in the file: the message is redacted when it is made."""

    def __init__(self, message: str) -> None:
        lines = (logs.excerpt(line, MAX_PROBLEM_CHARS) for line in message.splitlines())
        super().__init__("\n".join(lines))

    @property
    def problems(self) -> tuple[str, ...]:
        return tuple(str(self).splitlines())


# A file full of mistakes is reported this far; the rest is counted. Each problem is cut
# at MAX_PROBLEM_CHARS (after redaction), whatever value or key it quotes.
MAX_PROBLEMS = 50
MAX_PROBLEM_CHARS = 1000


class ConfigReader(Reader):
    """The shared reader, plus ``${VAR}`` expansion in strings and durations; it collects
    every problem of a file (``check`` raises them together)."""

    def __init__(self, source: str, environ: dict[str, str]) -> None:
        super().__init__(source, ConfigError, collect=True)
        self.environ = environ

    def failures(self) -> int:
        return len(self.problems or ())

    def reported(self, read: Callable[..., T], *args: Any) -> T | None:
        """``read(*args)``, or None once its problem is reported, so that the reading goes
        on to the next item of a list and one run names the problems of every item."""
        try:
            return read(*args)
        except ConfigError as exc:
            self.report(exc)
            return None

    def check(self) -> None:
        """Raise every problem reported so far as one ConfigError."""
        problems = self.problems or []
        if problems:
            shown = problems[:MAX_PROBLEMS]
            if len(problems) > MAX_PROBLEMS:
                shown.append(f"{self.source}: ... and {len(problems) - MAX_PROBLEMS} more problems")
            raise ConfigError("\n".join(shown))

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
            if not re.fullmatch(r"[+-]?[0-9]{1,100}", expanded):
                raise self.fail(
                    path, f"must be an integer, got {show(expanded)} from the environment"
                )
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
Read = Callable[[ConfigReader, Any, str], Any]
ReadItem = Callable[[ConfigReader, dict[str, Any], str], Any]


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


def key_fields(cls: type) -> tuple[str, ...]:
    """The fields of a settings class that are YAML keys of it (not only inherited)."""
    return tuple(
        spec.name
        for spec in fields(cls)
        if (found := _option(spec)) is not None and found.keys(spec.name)
    )


def read_fields(
    reader: ConfigReader,
    cls: type,
    item: dict[str, Any],
    path: str,
    top: dict[str, Any],
    top_cls: type,
) -> dict[str, Any]:
    """Every field of ``cls`` from ``item``: read when given, else the top-level value
    (inherited fields) or the default; a field with neither is required. An account
    field that overrides a top-level one is read as the field of ``top_cls`` is.

    A field that cannot be read is reported (whatever the exception, with its key path)
    and takes its default, so the fields after it are still checked."""
    values: dict[str, Any] = {}
    for spec in fields(cls):
        found = _option(spec)
        if found is None:
            continue
        try:
            values[spec.name] = _read_field(reader, spec, found, item, path, top, top_cls)
        except ConfigError as exc:
            reader.report(exc)
        except Exception as exc:  # a value no check foresaw is still a config error
            reader.report(reader.fail(join(path, spec.name), f"{type(exc).__name__}: {exc}"))
        else:
            continue
        values[spec.name] = None if spec.default is MISSING else spec.default
    return values


def _read_field(
    reader: ConfigReader,
    spec: Field[Any],
    found: Option,
    item: dict[str, Any],
    path: str,
    top: dict[str, Any],
    top_cls: type,
) -> Any:
    key = join(path, spec.name)
    if found.read_item is not None:
        return found.read_item(reader, item, path)
    if spec.name in item and (found.override or not found.inherit):
        read = found.read or _option_of(top_cls, spec.name).read
        return item[spec.name] if read is None else read(reader, item[spec.name], key)
    if found.inherit:
        return top[spec.name]
    if spec.default is MISSING:
        raise reader.fail(key, "required")
    return spec.default


def _option_of(cls: type, name: str) -> Option:
    spec = next(s for s in fields(cls) if s.name == name)
    found = _option(spec)
    assert found is not None
    return found
