"""Reading a YAML file into checked values, every problem phrased for the user.

Shared by the configuration file (config.py) and the web config (webconfig.py): YAML
loading that refuses a key given twice and reports where the YAML broke, key paths
(``accounts[0].page_size``), "did you mean" hints for unknown keys, and the checks of
single values. A problem is raised as ``<file>: <key path>: <what is wrong>``.
"""

from __future__ import annotations

import difflib
import re
import reprlib
from collections.abc import Callable, Iterable
from typing import Any

import yaml


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """A safe loader that rejects a key given twice in one mapping, a key that is not a
    single value, and an integer too long to convert."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        try:
            twice = key in seen
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                "a key must be a single value, not a list or mapping",
                key_node.start_mark,
            ) from None
        if twice:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {show(key)} is given twice", key_node.start_mark
            )
        seen.add(key)
    mapping: dict[Any, Any] = loader.construct_mapping(node)
    return mapping


# Python's int() refuses more than 4300 digits; no setting needs a tenth of that.
MAX_INTEGER_DIGITS = 100


def _construct_int(loader: _UniqueKeyLoader, node: yaml.ScalarNode) -> int:
    digits = len(str(node.value))
    if digits > MAX_INTEGER_DIGITS:
        raise yaml.constructor.ConstructorError(
            None, None, f"a {digits}-digit number is too long to be a setting", node.start_mark
        )
    value: int = loader.construct_yaml_int(node)
    return value


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)
_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)


_WORDS = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list"}


def kind(value: Any) -> str:
    """What a YAML value is, in words: ``a number``, ``a mapping``, ``nothing``..."""
    if value is None:
        return "nothing"
    return {**_WORDS, dict: "a mapping"}.get(type(value), type(value).__name__)


_SHOWN = reprlib.Repr()
_SHOWN.maxstring = _SHOWN.maxother = _SHOWN.maxlong = 60
_SHOWN.maxlist = _SHOWN.maxdict = _SHOWN.maxtuple = _SHOWN.maxset = 4
_SHOWN.maxlevel = 2


def show(value: Any) -> str:
    """A value quoted in a message: its repr, but never long, however large or deeply
    aliased the YAML made it."""
    return _SHOWN.repr(value)


# PyYAML's problems that quote a value a mistyped token may be (an alias, a tag).
_QUOTING_VALUE = re.compile(r"(found undefined alias|found undefined tag handle)(?: .*)?", re.S)


def _yaml_problem(problem: str | None) -> str:
    """PyYAML's problem, without a value it quotes: in ``usertoken: !abc…`` or
    ``usertoken: *abc…`` the tag or alias is the value, which may be the token itself."""
    if problem and problem.startswith("could not determine a constructor for the tag"):
        if "yaml.org,2002:merge" in problem:
            return "YAML merge keys (<<) are not supported: give each key where it applies"
        return "a value starting with ! is read as a YAML tag; quote it ('!…')"
    quoting = _QUOTING_VALUE.fullmatch(problem or "")
    if quoting:
        return f"{quoting.group(1)} (a value starting with * or ! must be quoted)"
    return str(problem)


def _key_shown(key: str) -> tuple[str, bool]:
    """An unknown key as a message shows it, and whether a value seems to follow it: in
    flow style ``{usertoken:abc}`` is one key, whose part after the colon is the value."""
    name, colon, _ = key.partition(":")
    return (name + ":…", True) if colon and name else (key, False)


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def did_you_mean(key: str, allowed: Iterable[str]) -> str:
    """`` (did you mean poll_interval?)`` for a near miss, else an empty string."""
    if len(key) > 100:
        return ""
    hint = difflib.get_close_matches(key, list(allowed), n=1)
    return f" (did you mean {hint[0]}?)" if hint else ""


class Reader:
    """Walks parsed YAML; ``fail`` turns a problem into ``error`` with file and key path.

    With ``collect``, ``report`` keeps a problem in ``problems`` and the reading goes on,
    so that one run names every problem of a file; otherwise it raises at the first."""

    def __init__(self, source: str, error: Callable[[str], Exception], collect: bool = False):
        self.source = source
        self.error = error
        self.problems: list[str] | None = [] if collect else None

    def fail(self, path: str, problem: str) -> Exception:
        return self.error(
            f"{self.source}: {path}: {problem}" if path else f"{self.source}: {problem}"
        )

    def report(self, problem: Exception) -> None:
        """A problem that need not stop the reading: kept when collecting, else raised."""
        if self.problems is None:
            raise problem
        self.problems.extend(str(problem).splitlines())

    def load(self, text: str) -> Any:
        """Parse YAML text (safe types only, no key twice in a mapping). Whatever the
        text, the only exception is ``error``."""
        try:
            return yaml.load(text, Loader=_UniqueKeyLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise self.fail("", f"invalid YAML{where}: {_yaml_problem(exc.problem)}") from None
        except yaml.YAMLError as exc:
            raise self.fail("", f"invalid YAML: {exc}") from None
        except RecursionError:
            raise self.fail("", "invalid YAML: exceeded maximum nesting depth") from None
        except Exception as exc:  # PyYAML raises others on odd input
            raise self.fail("", f"invalid YAML: {type(exc).__name__}: {exc}") from None

    def mapping(self, value: Any, path: str, allowed: Iterable[str] | None) -> dict[str, Any]:
        """A mapping whose keys are all ``allowed`` (any string key when None); an unknown
        key is reported, and left out when collecting."""
        if not isinstance(value, dict):
            raise self.fail(path, f"must be a mapping, got {kind(value)}")
        names = None if allowed is None else tuple(allowed)
        known: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str) or (names is not None and key not in names):
                name, value_follows = _key_shown(str(key))
                hint = did_you_mean(name, names) if names is not None else ""
                if value_follows:
                    hint += " (a value after a colon needs a space before it: `key: value`)"
                self.report(self.fail(join(path, name), f"unknown key{hint}"))
                continue
            known[key] = item
        return known

    def section(self, value: Any, path: str, allowed: Iterable[str] | None) -> dict[str, Any]:
        """Like mapping, but an absent or empty section is an empty mapping."""
        return {} if value is None else self.mapping(value, path, allowed)

    def string(self, value: Any, path: str) -> str:
        if not isinstance(value, str):
            raise self.fail(path, f"must be a string, got {kind(value)}")
        if not value.strip():
            raise self.fail(path, "must not be empty")
        return value

    def strings(self, value: Any, path: str) -> list[str]:
        """A list of non-empty strings; absent is an empty list."""
        if value is None:
            return []
        return [
            self.string(item, f"{path}[{i}]") for i, item in enumerate(self.sequence(value, path))
        ]

    def integer(self, value: Any, path: str, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"must be an integer, got {kind(value)}")
        if value < minimum:
            raise self.fail(path, f"must be at least {minimum}, got {value}")
        return value

    def boolean(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(path, f"must be true or false, got {kind(value)}")
        return value

    def choice(self, value: Any, path: str, choices: Iterable[str]) -> str:
        names = tuple(choices)
        if value not in names:
            raise self.fail(path, f"must be one of {', '.join(names)}, got {show(value)}")
        return str(value)

    def sequence(self, value: Any, path: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(path, f"must be a list, got {kind(value)}")
        return value
