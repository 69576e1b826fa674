"""Configuration: valid files load as written; each mistake gets its exact message."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from exporter.config import (
    AccountConfig,
    ConfigError,
    Secret,
    Selector,
    Settings,
    load_config,
    parse_config,
    parse_duration,
    parse_size,
    yamlreader,
)
from exporter.config.keys import allowed_keys
from tests.conftest import ROOT

MINIMAL = """
accounts:
  - name: acme
    api_url: https://na03.mypinpointe.com/apijson.php
    username: DRBrel2
    usertoken: secret-token
"""


def parse(text: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return parse_config(text, "config.yaml", env or {})


def test_defaults_follow_the_contract() -> None:
    settings = parse(MINIMAL)
    assert (settings.poll_interval, settings.timeout, settings.stale_after) == (300, 30, 900)
    assert settings.max_concurrency == 4
    account = settings.accounts[0]
    assert account.name == "acme"
    assert account.request_type == "Stats"
    assert account.groupings == ("autoresponder",)
    assert account.page_size == 100
    assert account.autoresponders == ()
    assert account.max_sends_per_autoresponder == 50
    assert account.poll_interval == 300
    assert account.usertoken.reveal() == "secret-token"
    assert "secret-token" not in repr(account)


def test_every_key_is_read() -> None:
    text = """
poll_interval: 1m30s
timeout: 10s
stale_after: 1h
max_concurrency: 2
accounts:
  - name: acme.eu-1
    api_url: http://127.0.0.1:8080/apijson.php
    username: u
    usertoken: ${TOKEN}
    request_type: Autoresponders
    groupings: [send, autoresponder]
    page_size: 0
    autoresponders: [{id: 12}, {name: "Welcome series"}]
    max_sends_per_autoresponder: 0
    field_map: {SpamCount: complaints}
    poll_interval: 10m
    tls_insecure_skip_verify: true
"""
    settings = parse(text, {"TOKEN": "from-env"})
    assert (settings.poll_interval, settings.timeout, settings.stale_after) == (90, 10, 3600)
    assert settings.max_concurrency == 2
    account = settings.accounts[0]
    assert account.usertoken.reveal() == "from-env"
    assert account.request_type == "Autoresponders"
    assert account.groupings == ("send", "autoresponder")
    assert account.page_size == 0
    assert account.autoresponders == (Selector(id=12), Selector(name="Welcome series"))
    assert account.max_sends_per_autoresponder == 0
    assert account.field_map == (("spamcount", "complaints"),)
    assert account.poll_interval == 600
    assert account.timeout == 10
    assert account.tls_insecure_skip_verify is True


def test_usertoken_file_is_read_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("file-token\n")
    config = tmp_path / "config.yaml"
    config.write_text(MINIMAL.replace("usertoken: secret-token", "usertoken_file: token"))
    assert load_config(str(config)).accounts[0].usertoken.reveal() == "file-token"


def test_the_example_configuration_is_valid() -> None:
    settings = load_config(str(ROOT / "config.example.yaml"), {"PINPOINTE_TOKEN": "x"})
    assert [a.name for a in settings.accounts] == ["acme"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "config.yaml: accounts: required"),
        ("accounts: []", "config.yaml: accounts: must list at least one account"),
        (
            MINIMAL + "pol_interval: 5m\n",
            "config.yaml: pol_interval: unknown key (did you mean poll_interval?)",
        ),
        (
            MINIMAL.replace("    username: DRBrel2\n", ""),
            "config.yaml: accounts[0].username: required",
        ),
        (
            MINIMAL.replace("    api_url: https://na03.mypinpointe.com/apijson.php\n", ""),
            "config.yaml: accounts[0].api_url: required",
        ),
        (
            MINIMAL.replace("https://na03.mypinpointe.com/apijson.php", "na03.mypinpointe.com"),
            "config.yaml: accounts[0].api_url: must be an http:// or https:// URL",
        ),
        (
            MINIMAL.replace("    usertoken: secret-token\n", ""),
            "config.yaml: accounts[0].usertoken: required (or usertoken_file)",
        ),
        (
            MINIMAL + "    usertoken_file: /x\n",
            "config.yaml: accounts[0].usertoken: give usertoken or usertoken_file, not both",
        ),
        (
            MINIMAL.replace("secret-token", "${MISSING_TOKEN}"),
            "config.yaml: accounts[0].usertoken: environment variable MISSING_TOKEN is not set",
        ),
        (
            "poll_interval: 5 minutes\n" + MINIMAL,
            "config.yaml: poll_interval: invalid duration '5 minutes': "
            "use a Prometheus duration like 30s, 5m or 1h",
        ),
        (
            "timeout: 30\n" + MINIMAL,
            "config.yaml: timeout: must be a duration like 30s, 5m or 1h, got a number",
        ),
        (
            MINIMAL + "    request_type: stats\n",
            "config.yaml: accounts[0].request_type: must be one of Stats, Autoresponders, "
            "got 'stats'",
        ),
        (
            MINIMAL + "    groupings: [campaign]\n",
            "config.yaml: accounts[0].groupings[0]: must be one of autoresponder, send, "
            "got 'campaign'",
        ),
        (
            MINIMAL + "    page_size: -1\n",
            "config.yaml: accounts[0].page_size: must be at least 0, got -1",
        ),
        (
            MINIMAL + "    page_size: '100'\n",
            "config.yaml: accounts[0].page_size: must be an integer, got a string",
        ),
        (
            MINIMAL + "    autoresponders: [{id: 1, name: x}]\n",
            "config.yaml: accounts[0].autoresponders[0]: give exactly one of id or name",
        ),
        (
            MINIMAL + "    field_map: {spamcount: spam}\n",
            "config.yaml: accounts[0].field_map.spamcount: must be one of recipients, opens, "
            "unique_opens, clicks, unique_clicks, forwards, unsubscribes, bounces_soft, "
            "bounces_hard, bounces_unknown, complaints, got 'spam'",
        ),
        (
            MINIMAL + "accounts: []\n",
            "config.yaml: invalid YAML at line 7, column 1: key 'accounts' is given twice",
        ),
        (
            MINIMAL + "  - name: acme\n    api_url: http://x/apijson.php\n"
            "    username: u\n    usertoken: t\n",
            "config.yaml: accounts[1].name: duplicate account name 'acme'",
        ),
        (
            MINIMAL.replace("name: acme", "name: acme corp"),
            "config.yaml: accounts[0].name: "
            "'acme corp' may contain only letters, digits, _ . and -",
        ),
        (
            MINIMAL + "    poll_interval: 1h\n",
            "config.yaml: accounts[0].poll_interval: 1h is longer than stale_after (15m): "
            "data would go stale between polls",
        ),
        (
            "poll_interval: 20m\n" + MINIMAL,
            "config.yaml: poll_interval: 20m is longer than stale_after (15m): "
            "data would go stale between polls",
        ),
        (
            MINIMAL + "    field_map: {spamcount: complaints, SpamCount: opens}\n",
            "config.yaml: accounts[0].field_map.SpamCount: given twice "
            "(field names are case-insensitive)",
        ),
        (
            MINIMAL + "    tls_insecure_skip_verify: yes please\n",
            "config.yaml: accounts[0].tls_insecure_skip_verify: must be true or false, "
            "got a string",
        ),
        (
            MINIMAL + "    ca_file: /nonexistent/ca.pem\n",
            "config.yaml: accounts[0].ca_file: file /nonexistent/ca.pem does not exist",
        ),
        (
            MINIMAL + "    ca_file: ca.pem\n",
            "config.yaml: accounts[0].ca_file: file ca.pem does not exist",
        ),
        ("accounts: {name: acme}", "config.yaml: accounts: must be a list, got a mapping"),
        (
            "max_concurrency: 0\n" + MINIMAL,
            "config.yaml: max_concurrency: must be at least 1, got 0",
        ),
        (
            "accounts: [\n",
            "config.yaml: invalid YAML at line 2, column 1: did not find expected node content",
        ),
    ],
)
def test_invalid_configuration_is_named_precisely(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse(text)
    assert str(raised.value) == message
    assert "secret-token" not in str(raised.value)


def test_unreadable_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as raised:
        load_config(str(missing))
    assert str(raised.value) == (
        f"{missing}: the configuration file cannot be read: No such file or directory"
    )


def test_empty_token_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("\n")
    config = tmp_path / "config.yaml"
    config.write_text(MINIMAL.replace("usertoken: secret-token", "usertoken_file: token"))
    with pytest.raises(ConfigError) as raised:
        load_config(str(config))
    assert str(raised.value) == f"{config}: accounts[0].usertoken_file: token is empty"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h30m", 5400), ("1d", 86400), ("250ms", 0.25), ("1w", 604800)],
)
def test_prometheus_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "5", "5 m", "1m1h", "-5s", "1.5h", "\u0663m", "5m\n1h", "\uff15s"]
)
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize("text", ["101y", "300y", "9999999y", "5300w", "36600d", "9" * 400 + "s"])
def test_durations_beyond_100_years_are_refused(text: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_duration(text)
    assert str(raised.value) == f"duration {text[:40]!r} is longer than 100y, the longest accepted"
    assert parse_duration("100y") == 100 * 365 * 86400


@pytest.mark.parametrize("text", ["\u0663KiB", "\u0663", "1\u0660MiB"])
def test_sizes_take_ascii_digits_only(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


def test_secret_forms_cover_json_and_url_escaping() -> None:
    forms = Secret('a/b"c-token+x y~').forms()
    assert {
        'a/b"c-token+x y~',  # as written
        'a/b\\"c-token+x y~',  # JSON
        'a\\/b\\"c-token+x y~',  # JSON as PHP writes it
        "a%2Fb%22c-token%2Bx%20y~",  # URL-encoded
        "a/b%22c-token%2Bx%20y~",  # ... leaving "/" alone
        "a%2Fb%22c-token%2Bx+y~",  # ... with "+" for a space
        "a%2Fb%22c-token%2Bx+y%7E",  # ... and "~" encoded (PHP's urlencode)
        "a%252Fb%2522c-token%252Bx%2520y~",  # ... twice
    } <= set(forms)
    assert list(forms) == sorted(forms, key=len, reverse=True)
    assert repr(Secret("abc")) == "Secret('<redacted>')"


def test_secret_forms_of_a_non_ascii_token() -> None:
    forms = set(Secret("straßeTök").forms())
    assert {"STRASSETÖK", "STRASSET%C3%96K", "stra%C3%9FeT%C3%B6k", "straÃ\x9feTÃ¶k"} <= forms


def _readme_config_table() -> dict[str, str]:
    """key -> default column of the configuration chapter's table of keys."""
    chapter = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    section = chapter.split("\n## The configuration file\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|") for line in section.splitlines() if line.startswith("| `")]
    return {row[1].strip().strip("`"): row[2].strip() for row in rows}


def test_each_key_is_defined_once_and_the_docs_list_them_all() -> None:
    """The allowed keys come from the settings' fields; the docs' table names
    exactly those keys, and each default it shows is the one the loader uses."""
    table = _readme_config_table()
    top = [key for key in allowed_keys(Settings) if key != "accounts"]
    accounts = [f"accounts[].{key}" for key in allowed_keys(AccountConfig)]
    assert list(table) == top + accounts
    defaults = parse(MINIMAL)
    checked = 0
    for key, default in table.items():
        if not default.startswith("`"):
            continue  # required, inherited or described in words
        value = default.split("`")[1]
        if key.startswith("accounts[]."):
            text = MINIMAL + f"    {key.removeprefix('accounts[].')}: {value}\n"
        else:
            text = f"{key}: {value}\n" + MINIMAL
        assert parse(text) == defaults, key
        checked += 1
    assert checked >= 11  # every key with a default written as a value


def test_the_bounds_on_a_hostile_server_default_and_can_be_raised() -> None:
    account = parse(MINIMAL).accounts[0]
    assert (account.poll_timeout, account.max_record_size, account.max_page_size) == (
        300,
        16 * 1024,
        8 * 1024 * 1024,
    )
    assert account.max_label_length == 1024
    # poll_timeout follows the account's poll interval, but is at least a minute
    fast = parse("poll_interval: 10s\n" + MINIMAL + "    poll_interval: 12m\n")
    assert [a.poll_timeout for a in parse("poll_interval: 10s\n" + MINIMAL).accounts] == [60]
    assert fast.accounts[0].poll_timeout == 720
    raised = parse(
        "poll_timeout: 2m\nmax_record_size: 64KiB\nmax_page_size: 100000000\n"
        "max_label_length: 4096\n" + MINIMAL
    ).accounts[0]
    assert (raised.poll_timeout, raised.max_record_size, raised.max_page_size) == (
        120,
        65536,
        100_000_000,
    )
    assert raised.max_label_length == 4096


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "max_page_size: 8 megabytes\n",
            "config.yaml: max_page_size: invalid size '8 megabytes': use bytes or a size like "
            "16KiB, 8MiB or 1GiB",
        ),
        ("max_record_size: 0\n", "config.yaml: max_record_size: must be at least 1 byte"),
        ("max_label_length: 3\n", "config.yaml: max_label_length: must be at least 16, got 3"),
        ("poll_timeout: 0s\n", "config.yaml: poll_timeout: must be longer than 0s"),
        (
            "max_page_size: [1]\n",
            "config.yaml: max_page_size: must be a size like 16KiB or 8MiB, got a list",
        ),
    ],
)
def test_bad_bounds_name_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse(text + MINIMAL)
    assert str(raised.value) == message


def test_selecting_thousands_of_autoresponders_compares_no_pair(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Duplicates among 8,000 selected autoresponders are found by hashing, not by
    comparing every pair (which took 32 million comparisons)."""
    compared = 0
    original = Selector.__eq__

    def counting_eq(self: Selector, other: object) -> bool:
        nonlocal compared
        compared += 1
        return original(self, other)

    monkeypatch.setattr(Selector, "__eq__", counting_eq)
    selection = "".join(f"\n      - {{id: {i}}}" for i in range(8_000))
    settings = parse(MINIMAL + f"    autoresponders:{selection}\n")
    assert len(settings.accounts[0].autoresponders) == 8_000
    assert compared < 8_000


def test_a_ca_file_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").mkdir()
    text = MINIMAL + "    ca_file: ca.pem\n"
    with pytest.raises(ConfigError) as raised:
        parse_config(text, str(tmp_path / "config.yaml"), {})
    assert str(raised.value) == (
        f"{tmp_path}/config.yaml: accounts[0].ca_file: file {tmp_path}/ca.pem is a "
        "directory, not a regular file"
    )


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse(text)
    return str(raised.value).splitlines()


def test_every_item_of_a_list_or_map_is_checked_in_one_run() -> None:
    text = (
        MINIMAL
        + """    groupings: [foo, bar]
    autoresponders: [{id: -3}, {name: ""}, {id: 1, name: x}, {id: abc}, {id: 5}, {id: 5}]
    field_map: {a: nosuch, b: alsobad, c: opens}
"""
    )
    paths = [line.split(": ")[1] for line in problems_of(text)]
    assert paths == [
        "accounts[0].groupings[0]",
        "accounts[0].groupings[1]",
        "accounts[0].autoresponders[0].id",
        "accounts[0].autoresponders[1].name",
        "accounts[0].autoresponders[2]",
        "accounts[0].autoresponders[3].id",
        "accounts[0].autoresponders[5]",
        "accounts[0].field_map.a",
        "accounts[0].field_map.b",
    ]


@pytest.mark.parametrize(
    "username",
    ["your-username", "YOUR_USERNAME", "your_user_name", "username", "your-pinpointe-username"],
)
def test_a_placeholder_username_is_refused(username: str) -> None:
    (problem,) = problems_of(MINIMAL.replace("username: DRBrel2", f"username: {username}"))
    assert problem.startswith("config.yaml: accounts[0].username: looks like a placeholder")


@pytest.mark.parametrize(
    "token",
    [
        "your-user-token",
        "YOUR_USER_TOKEN",
        "your-api-key",
        "PASTE_TOKEN_HERE",
        "TOKEN",
        "token-goes-here",
        "REPLACE_ME",
    ],
)
def test_a_placeholder_token_is_refused(token: str) -> None:
    (problem,) = problems_of(MINIMAL.replace("usertoken: secret-token", f"usertoken: {token}"))
    assert problem.startswith("config.yaml: accounts[0].usertoken: looks like a placeholder")
    assert token not in problem


@pytest.mark.parametrize("name", ["acme-ops", "pastelshop", "username2", "tokenizer", "yourshop"])
def test_real_names_are_not_taken_for_placeholders(name: str) -> None:
    settings = parse(MINIMAL.replace("username: DRBrel2", f"username: {name}"))
    assert settings.accounts[0].username == name


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (
            "    usertoken: !Tk9fA3bQ7xZ2new",
            "config.yaml: invalid YAML at line 6, column 16: a value starting with ! is read as "
            "a YAML tag; quote it ('!…')",
        ),
        (
            "    {usertoken:Tk9fA3bQ7xZ2new}",
            "config.yaml: accounts[0].usertoken:…: unknown key (did you mean usertoken?) "
            "(a value after a colon needs a space before it: `key: value`)",
        ),
        (
            "    usertoken: *Tk9fA3bQ7xZ2new",
            "config.yaml: invalid YAML at line 6, column 16: found undefined alias (a value "
            "starting with * or ! must be quoted)",
        ),
        (
            "    usertoken: !Tk9!fA3bQ7xZ2new",
            "config.yaml: invalid YAML at line 6, column 16: found undefined tag handle (a "
            "value starting with * or ! must be quoted)",
        ),
    ],
    ids=["tag", "flow-key", "alias", "tag-handle"],
)
def test_a_mistyped_token_is_not_quoted_in_the_problem(line: str, problem: str) -> None:
    text = MINIMAL.replace("    usertoken: secret-token", line)
    if line.lstrip().startswith("{"):
        text = MINIMAL.replace(
            "  - name: acme\n",
            "  - {name: acme, api_url: 'https://na03.mypinpointe.com/apijson.php', "
            "username: DRBrel2, usertoken:Tk9fA3bQ7xZ2new}\n",
        ).split("    api_url")[0]
    problems = problems_of(text)
    assert problem in problems, problems
    assert not [p for p in problems if "Tk9fA3bQ7xZ2new" in p]


@pytest.mark.parametrize("value", ["*Tk9fA3bQ7xZ2new", "!Tk9!fA3bQ7xZ2new", "!Tk9fA3bQ7xZ2new"])
def test_pure_python_yaml_problems_do_not_quote_the_value_either(value: str) -> None:
    """Without libyaml, PyYAML's own problems quote an alias or tag handle whole."""
    with pytest.raises(yaml.MarkedYAMLError) as raised:
        yaml.load(f"usertoken: {value}\n", Loader=yaml.SafeLoader)
    assert raised.value.problem
    shown = yamlreader._yaml_problem(raised.value.problem)
    assert "Tk9" not in shown, shown


def test_merge_keys_are_refused_saying_so() -> None:
    (problem,) = problems_of(MINIMAL + "    <<: {page_size: 5}\n")
    assert problem.endswith(
        "YAML merge keys (<<) are not supported: give each key where it applies"
    ), problem
