"""Command line: flags, modes (serve, --once, --config.check, --demo, --healthcheck,
--web.hash-password) and exit codes.

Exit codes: 0 ok, 1 runtime failure, 2 bad flags or bad configuration. Each mode
imports what it needs when it runs: ``--healthcheck``, run by a container engine every
few seconds, loads neither the collector nor the Pinpointe client.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from exporter import logs
from exporter.flags import build_parser

if TYPE_CHECKING:
    from exporter.config import Settings
    from exporter.simulator import Simulator
    from exporter.web import WebConfig

log = logging.getLogger("exporter")
RESERVED_PATHS = ("/", "/-/healthy", "/-/ready")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.healthcheck:
        return _healthcheck(args, sys.argv[1:] if argv is None else list(argv))
    if args.hash_password:
        return _hash_password()
    logs.setup(args.log_level, args.log_format)
    problem = _flag_problem(args)
    if problem is not None:
        return _usage(problem)
    serving = not (args.config_check or args.once)
    if serving:
        from exporter.app import hold_signals

        hold_signals()  # before the demo's simulator starts its threads
    run = _load(args)
    if isinstance(run, int):
        return run
    try:
        if args.config_check:
            return _config_check(run, args)
        if args.once:
            return _once(run.settings)
        from exporter.app import serve

        return serve(run.settings, run.load, run.source, run.listen, args, run.web)
    finally:
        if run.simulator is not None:
            run.simulator.stop()


@dataclass
class Run:
    """What a mode runs on, once the flags and files are checked."""

    listen: tuple[str, int]
    settings: Settings
    load: Callable[[], Settings]  # the configuration again (a reload), as this process polls it
    source: Path | None  # the configuration file, None in --demo
    web: WebConfig | None
    simulator: Simulator | None


def _flag_problem(args: argparse.Namespace) -> str | None:
    from exporter.collector import parse_shard
    from exporter.config import parse_duration
    from exporter.web import parse_listen_address

    path = args.telemetry_path
    if not path.startswith("/") or path in RESERVED_PATHS:
        return f"--web.telemetry-path {path!r} must be a free absolute path"
    if args.max_connections < 1:
        return f"--web.max-connections {args.max_connections} must be at least 1"
    try:
        parse_listen_address(args.listen_address)
        if args.shard:
            parse_shard(args.shard)
        parse_duration(args.auto_reload_interval)
    except ValueError as exc:
        return str(exc)
    return None


def _load(args: argparse.Namespace) -> Run | int:
    """The web config and the configuration (or the demo's), checked; 2 if either fails."""
    from exporter.collector import export_shard, parse_shard
    from exporter.config import ConfigError, load_config
    from exporter.web import WebConfigError, load_web_config, parse_listen_address

    shard = parse_shard(args.shard) if args.shard else None
    if shard is not None:
        export_shard(*shard)
    web = None
    if args.web_config_file:
        try:
            web = load_web_config(args.web_config_file)
        except WebConfigError as exc:
            return _usage(str(exc))
    listen = parse_listen_address(args.listen_address)
    if args.demo:
        from exporter.demo import start_demo

        simulator, demo = start_demo()
        settings = _this_shard(demo, shard, args.shard)
        return Run(listen, settings, lambda: settings, None, web, simulator)

    def load() -> Settings:
        return _this_shard(load_config(args.config_file), shard, args.shard)

    try:
        settings = load()
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    return Run(listen, settings, load, Path(args.config_file), web, None)


def _this_shard(settings: Settings, shard: tuple[int, int] | None, flag: str) -> Settings:
    """What this process polls of a loaded configuration."""
    from exporter.collector import shard_of

    if shard is None:
        return settings
    index, count = shard
    mine = tuple(a for a in settings.accounts if shard_of(a.name, count) == index)
    if not mine:
        log.warning(
            "this shard has no accounts to poll; it serves only its own health metrics",
            extra={"fields": {"shard": flag}},
        )
    return replace(settings, accounts=mine)


def _config_check(run: Run, args: argparse.Namespace) -> int:
    heading = (
        "--demo: no configuration file was read; the demo polls the built-in simulator"
        if args.demo
        else f"{args.config_file}: configuration is valid"
    )
    print(describe(run.settings, heading, args.shard))
    if run.web is not None:
        print(f"{args.web_config_file}: web config is valid: {run.web.describe()}")
    return 0


def describe(settings: Settings, heading: str, shard: str | None) -> str:
    """What would be polled, for --config.check; never shows a token."""
    from exporter.config import format_duration

    lines = [
        heading,
        f"poll_interval={format_duration(settings.poll_interval)} "
        f"timeout={format_duration(settings.timeout)} "
        f"stale_after={format_duration(settings.stale_after)} "
        f"max_concurrency={settings.max_concurrency}",
    ]
    if shard:
        lines.append(f"shard {shard}: {len(settings.accounts)} accounts")
    for account in settings.accounts:
        selection = ", ".join(s.describe() for s in account.autoresponders)
        tls = "system CAs"
        if account.tls_insecure_skip_verify:
            tls = "TLS verification OFF"
        elif account.ca_file:
            tls = f"ca_file={account.ca_file}"
        lines.append(
            f"account {account.name}: POST {account.shown_url} as {account.username} "
            f"(usertoken set), requesttype {account.request_type}, "
            f"groupings {','.join(account.groupings)}, page_size {account.page_size}, "
            f"every {format_duration(account.poll_interval)}, "
            f"{selection or 'all autoresponders'}, {tls}"
        )
    return "\n".join(lines)


def _once(settings: Settings) -> int:
    """--once: poll every account once, the exposition on stdout; 0 if all succeeded."""
    import time

    from exporter.collector import Pollers
    from exporter.exposition import Store, render_reload, runtime_metrics

    store = Store(a.name for a in settings.accounts)
    store.set_process(render_reload(True, time.time()))
    ok = Pollers(settings.accounts, store, settings.max_concurrency).poll_all_once()
    out = sys.stdout.buffer
    for part in store.exposition.parts(False):
        out.write(part)
    out.write(runtime_metrics(False))
    out.flush()
    return 0 if ok else 1


def _healthcheck(args: argparse.Namespace, given: list[str]) -> int:
    """--healthcheck: probe /-/healthy of the exporter these flags (or the followed
    process's) describe."""
    from exporter.flags import web_flags
    from exporter.web.healthcheck import Credentials, followed_flags, run

    listen_address, web_config_file = args.listen_address, args.web_config_file
    web_flags_given = any(
        arg.startswith(("--web.listen-address", "--web.config.file")) for arg in given
    )
    if args.healthcheck_pid and not web_flags_given:
        followed = followed_flags(args.healthcheck_pid, web_flags)
        if followed is not None:
            pid, listen_address, web_config_file = followed
            print(f"following the web flags of pid {pid}", file=sys.stderr)
    credentials = Credentials(
        args.healthcheck_cert_file,
        args.healthcheck_key_file,
        args.healthcheck_username,
        args.healthcheck_password_file,
    )
    return run(listen_address, web_config_file, credentials)


def _hash_password() -> int:
    """--web.hash-password: one line from stdin (typed unseen at a terminal) -> bcrypt."""
    import getpass

    import bcrypt

    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
    else:
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    if not password:
        return _usage("--web.hash-password: no password on stdin")
    print(bcrypt.hashpw(password.encode(), bcrypt.gensalt(10)).decode())
    return 0


def _usage(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2
