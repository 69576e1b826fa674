"""Small things a new user hits, in-process: a password where a hash belongs, the .gitignore."""

from __future__ import annotations

import pytest
import yaml

from exporter.web import WebConfigError, parse_web_config
from tests.conftest import ROOT


def test_a_password_instead_of_a_hash_says_how_to_make_one() -> None:
    with pytest.raises(WebConfigError) as raised:
        parse_web_config(yaml.safe_dump({"basic_auth_users": {"ops": "notahash"}}), "w.yml")
    assert str(raised.value) == (
        "w.yml: basic_auth_users.ops: must be a bcrypt hash like $2y$10$... (make one with: "
        "pinpointe-exporter --web.hash-password, which reads the password from stdin)"
    )


def test_a_local_config_yaml_is_ignored_by_git() -> None:
    assert "/config.yaml" in (ROOT / ".gitignore").read_text().splitlines()
