"""The command-line flags of pinpointe-exporter (``--help`` shows them all)."""

from __future__ import annotations

import argparse

from exporter import __version__
from exporter.web import DEFAULT_MAX_CONNECTIONS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pinpointe-exporter",
        description="Prometheus exporter for Pinpointe autoresponder results.",
        allow_abbrev=False,  # as Prometheus' own flags; --healthcheck tells given flags apart
    )
    config = parser.add_argument_group("configuration")
    config.add_argument(
        "--config.file",
        dest="config_file",
        default="config.yaml",
        help="YAML configuration file (default: %(default)s)",
    )
    config.add_argument(
        "--config.auto-reload-interval",
        dest="auto_reload_interval",
        default="0s",
        metavar="DURATION",
        help="reload --config.file when its content changes, checked this often, e.g. 30s "
        "(default: %(default)s, off); SIGHUP and POST /-/reload reload it at any time",
    )
    config.add_argument(
        "--config.check",
        dest="config_check",
        action="store_true",
        help="validate the configuration, print what would be polled, exit",
    )
    web = parser.add_argument_group("web")
    web.add_argument(
        "--web.listen-address",
        dest="listen_address",
        default=":9863",
        help="address to serve on (default: %(default)s)",
    )
    web.add_argument(
        "--web.telemetry-path",
        dest="telemetry_path",
        default="/metrics",
        help="path of the metrics endpoint (default: %(default)s)",
    )
    web.add_argument(
        "--web.max-connections",
        dest="max_connections",
        type=int,
        default=DEFAULT_MAX_CONNECTIONS,
        help="most HTTP connections open at once (default: %(default)s)",
    )
    web.add_argument(
        "--web.config.file",
        dest="web_config_file",
        default=None,
        help="TLS and basic auth configuration (exporter-toolkit schema)",
    )
    web.add_argument(
        "--web.hash-password",
        dest="hash_password",
        action="store_true",
        help="read a password from stdin, print its bcrypt hash for basic_auth_users in "
        "--web.config.file, and exit",
    )
    web.add_argument(
        "--web.enable-lifecycle",
        dest="enable_lifecycle",
        action="store_true",
        help="serve POST/PUT /-/reload to reload the configuration (403 without this flag)",
    )
    logging_group = parser.add_argument_group("logging")
    logging_group.add_argument(
        "--log.level",
        dest="log_level",
        default="info",
        choices=("debug", "info", "warn", "error"),
        help="least severe level logged (default: %(default)s)",
    )
    logging_group.add_argument(
        "--log.format",
        dest="log_format",
        default="logfmt",
        choices=("logfmt", "json"),
        help="log line format (default: %(default)s)",
    )
    modes = parser.add_argument_group("modes")
    modes.add_argument(
        "--demo",
        action="store_true",
        help="serve data from the built-in Pinpointe simulator; no config needed",
    )
    modes.add_argument(
        "--once",
        action="store_true",
        help="poll every account once, print the metrics, exit 0 if all succeeded",
    )
    modes.add_argument(
        "--shard",
        default=None,
        metavar="INDEX/COUNT",
        help="poll only the accounts of this shard (0-based), e.g. 0/3",
    )
    health = parser.add_argument_group("healthcheck (Docker HEALTHCHECK, Compose)")
    health.add_argument(
        "--healthcheck",
        action="store_true",
        help="ask the exporter serving per --web.listen-address and --web.config.file "
        "for /-/healthy; exit 0 if healthy, 1 if not",
    )
    health.add_argument(
        "--healthcheck.pid",
        dest="healthcheck_pid",
        type=int,
        default=1,
        metavar="PID",
        help="without --web.listen-address and --web.config.file, follow those of the "
        "exporter running as this process or its child (default 1, a container's "
        "entrypoint; 0: do not)",
    )
    health.add_argument(
        "--healthcheck.cert-file",
        dest="healthcheck_cert_file",
        default=None,
        help="client certificate (PEM, may hold the key) when the web config requires one",
    )
    health.add_argument(
        "--healthcheck.key-file",
        dest="healthcheck_key_file",
        default=None,
        help="its private key, if not in --healthcheck.cert-file",
    )
    health.add_argument(
        "--healthcheck.basic-auth-username",
        dest="healthcheck_username",
        default=None,
        help="basic auth user (default: the web config's only user)",
    )
    health.add_argument(
        "--healthcheck.basic-auth-password-file",
        dest="healthcheck_password_file",
        default=None,
        help="file holding that user's password; without it a 401 from the exporter "
        "counts as alive",
    )
    parser.add_argument("--version", action="version", version=f"pinpointe-exporter {__version__}")
    return parser


def web_flags(argv: list[str]) -> tuple[str, str | None]:
    """The --web.listen-address and --web.config.file of an exporter's command line (for
    --healthcheck, which follows the exporter it probes)."""
    args, _ = build_parser().parse_known_args(argv)
    return args.listen_address, args.web_config_file
