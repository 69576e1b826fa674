"""The configuration's settings: every key a dataclass field, frozen once read.

How a field is read is given once, with it (``option``, ``inherit``: config/keys.py);
the readers of single values are in config/values.py, the reading of a file in
config/loader.py.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from exporter.config import values
from exporter.config.keys import ConfigReader, inherit, option
from exporter.config.secret import Secret, redacted_url, secret_forms, url_secrets
from exporter.config.values import REQUEST_TYPES, Selector

# poll_timeout defaults to the account's poll interval, but at least this.
MIN_POLL_TIMEOUT = 60.0


@dataclass(frozen=True, kw_only=True)
class Settings:
    poll_interval: float = option(ConfigReader.duration, 300.0)
    timeout: float = option(ConfigReader.duration, 30.0)
    stale_after: float = option(ConfigReader.duration, 900.0)
    max_concurrency: int = option(values.at_least(1), 4)
    poll_timeout: float | None = option(ConfigReader.duration, None)  # None: see MIN_POLL_TIMEOUT
    max_record_size: int = option(ConfigReader.size, 16 * 1024)
    max_page_size: int = option(ConfigReader.size, 8 * 1024 * 1024)
    max_label_length: int = option(values.at_least(16), 1024)
    max_exposition_size: int = option(ConfigReader.size, 64 * 1024 * 1024)
    accounts: tuple[AccountConfig, ...] = option()  # read by parse_config


@dataclass(frozen=True, kw_only=True)
class AccountConfig:
    name: str = option(values.read_account_name)
    api_url: str = option(values.read_api_url)
    username: str = option(values.read_username)
    usertoken: Secret = option(read_item=values.read_token, also=("usertoken_file",), repr=False)  # noqa: RUF009
    request_type: str = option(values.one_of(REQUEST_TYPES), "Stats")
    # False when request_type is given in the file: the other type is then never tried.
    # Not compared: pinning the type that is in use already changes nothing.
    probe_request_type: bool = field(default=True, compare=False)
    groupings: tuple[str, ...] = option(values.read_groupings, ("autoresponder",))
    page_size: int = option(values.at_least(0), 100)
    autoresponders: tuple[Selector, ...] = option(values.read_selectors, ())
    max_sends_per_autoresponder: int = option(values.at_least(0), 50)
    field_map: tuple[tuple[str, str], ...] = option(values.read_field_map, ())
    poll_interval: float = inherit(override=True)
    timeout: float = inherit()
    stale_after: float = inherit()
    ca_file: str | None = option(values.read_ca_file, None)
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

    def secret_forms(self) -> tuple[str, ...]:
        """Every form of every secret of the account: its token in use, and the secrets of
        its api_url (what label values from its server are redacted of)."""
        return (*self.usertoken.forms(), *self._url_forms)

    @functools.cached_property
    def _url_forms(self) -> tuple[str, ...]:
        return tuple(form for secret in url_secrets(self.api_url) for form in secret_forms(secret))
