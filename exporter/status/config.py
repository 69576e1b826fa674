"""The configuration in force, as YAML: every key with the value in force, secrets
redacted."""

from __future__ import annotations

from typing import Any

import yaml

from exporter.config import AccountConfig, FileSecret, Secret, Selector, Settings, format_duration
from exporter.config.keys import key_fields
from exporter.config.secret import redacted_url
from exporter.logs import REDACTED


def render_config(settings: Settings) -> str:
    """The running configuration as YAML, every key with the value in force (a key that
    is unset and has no default, such as poll_timeout, is left out); secrets redacted."""
    return "# The configuration in force; secrets are redacted.\n" + yaml.safe_dump(
        _config_document(settings), sort_keys=False, allow_unicode=True
    )


def _config_document(settings: Settings | AccountConfig) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for name in key_fields(type(settings)):
        value = getattr(settings, name)
        if isinstance(value, Secret):
            document.update(_token(value))
        elif name == "api_url":
            document[name] = redacted_url(value)
        elif name == "field_map":
            document[name] = dict(value)
        elif value is not None:
            document[name] = _yaml_value(value)
    return document


def _yaml_value(value: Any) -> Any:
    if isinstance(value, float):  # every float setting is a duration
        return format_duration(value)
    if isinstance(value, Selector):
        return {"id": value.id} if value.id is not None else {"name": value.name}
    if isinstance(value, AccountConfig):
        return _config_document(value)
    if isinstance(value, tuple):
        return [_yaml_value(item) for item in value]
    return value


def _token(token: Secret) -> dict[str, str]:
    if isinstance(token, FileSecret):
        return {"usertoken_file": str(token.path)}
    return {"usertoken": REDACTED}
