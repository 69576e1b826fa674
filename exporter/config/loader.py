"""Reading a configuration file into Settings, every problem of it reported at once."""

from __future__ import annotations

import os
from typing import Any

from exporter.config.files import FileProblem, read_text
from exporter.config.keys import ConfigError, ConfigReader, allowed_keys, read_fields
from exporter.config.settings import MIN_POLL_TIMEOUT, AccountConfig, Settings
from exporter.config.units import format_duration
from exporter.config.yamlreader import show

# A configuration file larger than this is refused: 1 MiB holds about 40,000 selected
# autoresponders, and reads in a few seconds (a reload may take RELOAD_TIMEOUT).

MAX_CONFIG_FILE_SIZE = 1024 * 1024


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
                reader.fail(
                    f"accounts[{index}].name", f"duplicate account name {show(account.name)}"
                )
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
