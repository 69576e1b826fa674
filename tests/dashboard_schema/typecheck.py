"""One ``tsc`` run over many dashboards: each becomes a TypeScript module that assigns its JSON
to CheckedDashboard (dashboard.ts); each diagnostic comes back with the JSON path of the line
it points at (``panels[1].options.footer``)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.dashboard_schema.install import HARNESS

TYPES_MODULE = "dashboard.ts"
HEADER = "import type { CheckedDashboard } from './dashboard';\n\n"
DECLARATION = "export const dashboard: CheckedDashboard = "
DIAGNOSTIC = re.compile(
    r"(?P<file>[^\s(][^(]*)\((?P<line>\d+),\d+\): error (?P<code>TS\d+): (?P<text>.*)"
)
Key = str | int


@dataclass(frozen=True)
class Diagnostic:
    dashboard: str
    path: str
    code: str
    message: str


def json_path(keys: Sequence[Key]) -> str:
    """``("panels", 1, "options")`` -> ``panels[1].options``."""
    text = ""
    for key in keys:
        if isinstance(key, int):
            text += f"[{key}]"
        elif re.fullmatch(r"\w+", key):
            text += f".{key}" if text else key
        else:
            text += f"[{json.dumps(key)}]"
    return text


def typescript_module(dashboard: Any) -> tuple[str, list[str]]:
    """The module's text, and the JSON path of each of its lines (indexed from line 1)."""
    lines = HEADER.splitlines()
    paths = ["" for _ in lines]

    def emit(value: Any, keys: tuple[Key, ...], depth: int, prefix: str, suffix: str) -> None:
        pad = "  " * depth
        path = json_path(keys)
        if isinstance(value, dict | list) and value:
            items = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
            brackets = "{}" if isinstance(value, dict) else "[]"
            lines.append(f"{pad}{prefix}{brackets[0]}")
            paths.append(path)
            for index, (key, item) in enumerate(items):
                label = f"{json.dumps(key)}: " if isinstance(value, dict) else ""
                comma = "," if index < len(items) - 1 else ""
                emit(item, (*keys, key), depth + 1, label, comma)
            lines.append(f"{pad}{brackets[1]}{suffix}")
        else:
            lines.append(f"{pad}{prefix}{json.dumps(value)}{suffix}")
        paths.append(path)

    emit(dashboard, (), 0, DECLARATION, ";")
    return "\n".join(lines) + "\n", ["", *paths]


def typecheck(dashboards: Mapping[str, Any], packages: Path) -> list[Diagnostic]:
    """Diagnostics of one tsc run over ``dashboards`` (name -> JSON value); ``packages`` holds
    the installed node_modules (install.installed_packages)."""
    with tempfile.TemporaryDirectory(dir=packages, prefix="run-") as tmp:
        work = Path(tmp)
        shutil.copyfile(HARNESS / TYPES_MODULE, work / TYPES_MODULE)
        line_paths: dict[str, tuple[str, list[str]]] = {}
        for index, (name, dashboard) in enumerate(dashboards.items()):
            module = f"dashboard{index}.ts"
            text, paths = typescript_module(dashboard)
            (work / module).write_text(text, encoding="utf-8")
            line_paths[module] = (name, paths)
        config = {"extends": str(HARNESS / "tsconfig.json"), "files": sorted(line_paths)}
        (work / "tsconfig.json").write_text(json.dumps(config), encoding="utf-8")
        tsc = packages / "node_modules" / ".bin" / "tsc"
        done = subprocess.run(
            [str(tsc), "-p", str(work / "tsconfig.json"), "--pretty", "false"],
            capture_output=True,
            text=True,
            check=False,
        )
    output = done.stdout + done.stderr
    found = [
        Diagnostic(name, paths[int(line)], code, text)
        for name, paths, line, code, text in _parse(output, line_paths)
    ]
    if done.returncode != 0 and not found:
        raise RuntimeError(f"tsc failed without a diagnostic on a dashboard:\n{output}")
    return found


def _parse(
    output: str, line_paths: Mapping[str, tuple[str, list[str]]]
) -> list[tuple[str, list[str], str, str, str]]:
    """tsc's ``file(line,col): error TSnnnn: text`` records, continuation lines joined."""
    records: list[tuple[str, list[str], str, str, str]] = []
    for raw in output.splitlines():
        match = DIAGNOSTIC.fullmatch(raw)
        if match is None:
            if raw.startswith(" ") and records:
                name, paths, line, code, text = records[-1]
                records[-1] = (name, paths, line, code, f"{text}\n{raw.strip()}")
            elif raw.strip():
                raise RuntimeError(f"unexpected tsc output:\n{output}")
            continue
        module = Path(match["file"]).name
        if module not in line_paths:
            raise RuntimeError(f"tsc reports an error outside the dashboards:\n{output}")
        name, paths = line_paths[module]
        records.append((name, paths, match["line"], match["code"], match["text"]))
    return records
