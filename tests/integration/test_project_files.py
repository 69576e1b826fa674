"""The files a release needs: the license, the changelog, the CI workflow and the
dependency-update configuration a hosted repository would use, each valid."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from exporter import __version__
from tests.conftest import ROOT, require_tool


def test_the_license_is_the_apache_2_text_and_the_package_ships_it() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]


def validate(schema: str, path: Path) -> None:
    checker = require_tool("check-jsonschema", "pip install -e '.[test]'")
    result = subprocess.run(
        [checker, "--builtin-schema", schema, str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_ci_workflow_is_valid_and_runs_what_ci_runs() -> None:
    workflow = ROOT / ".github" / "workflows" / "ci.yml"
    validate("vendor.github-workflows", workflow)
    steps = yaml.safe_load(workflow.read_text())["jobs"]["test"]["steps"]
    assert {"run": ".ci/run", "name": "make test"} in steps
    python = next(step for step in steps if step.get("uses", "").startswith("actions/setup-"))
    assert python["with"]["python-version"] == f"{sys.version_info.major}.{sys.version_info.minor}"


def test_dependency_updates_cover_every_ecosystem_the_project_pins() -> None:
    config = ROOT / ".github" / "dependabot.yml"
    validate("vendor.dependabot", config)
    updates = yaml.safe_load(config.read_text())["updates"]
    ecosystems = {(u["package-ecosystem"], u["directory"]) for u in updates}
    assert {("pip", "/"), ("docker", "/"), ("github-actions", "/")} <= ecosystems
    assert ("npm", "/tests/dashboard_schema") in ecosystems
    assert (ROOT / "tests" / "dashboard_schema" / "package.json").exists()


def test_the_changelog_keeps_a_changelog_and_the_version_has_one_source() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## [Unreleased]" in changelog
    for heading in ("### Added", "### Changed", "### Fixed"):
        assert heading in changelog
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "exporter.__version__"}
    written = [
        path
        for path in ROOT.glob("exporter/**/*.py")
        if f'"{__version__}"' in path.read_text(encoding="utf-8")
    ]
    assert written == [ROOT / "exporter" / "__init__.py"]
