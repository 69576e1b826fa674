"""The repository's scripts as modules, for tests that call their functions: they live
beside what they work on (mixin/render.py, prometheus/tests/generate_scenarios.py),
outside the exporter package."""

from __future__ import annotations

import importlib.util
from functools import cache
from types import ModuleType

from tests.conftest import ROOT


@cache
def script(relative: str) -> ModuleType:
    path = ROOT / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def render_module() -> ModuleType:
    return script("mixin/render.py")


def scenarios_module() -> ModuleType:
    return script("prometheus/tests/generate_scenarios.py")
