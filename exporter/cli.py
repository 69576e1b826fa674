"""Command line: flags, modes (serve, --once, --config.check, --demo) and exit codes.

Exit codes: 0 ok, 1 runtime failure, 2 bad flags or bad configuration.
"""

from __future__ import annotations

import argparse
import errno
import getpass
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from types import FrameType

from exporter import __version__, logs
from exporter.collector import Fleet, Pollers, Reloader, export_shard, parse_shard, shard_of
from exporter.config import ConfigError, Settings, format_duration, load_config, parse_duration
from exporter.exposition import Store, render_reload, runtime_metrics
from exporter.flags import build_parser as build_parser  # re-exported
from exporter.status import StatusViews
from exporter.web import (
    ExporterServer,
    WebConfig,
    WebConfigError,
    lifecycle_route,
    load_web_config,
    page_route,
    parse_listen_address,
    raise_open_files_limit,
    url_host,
)

log = logging.getLogger("exporter")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.healthcheck:
        from exporter.flags import web_flags
        from exporter.web.healthcheck import Credentials, followed_flags, run

        listen_address, web_config_file = args.listen_address, args.web_config_file
        given = sys.argv[1:] if argv is None else list(argv)
        if args.healthcheck_pid and not any(
            arg.startswith(("--web.listen-address", "--web.config.file")) for arg in given
        ):
            followed = followed_flags(args.healthcheck_pid, web_flags)
            if followed is not None:
                pid, listen_address, web_config_file = followed
                print(f"following the web flags of pid {pid}", file=sys.stderr)
        return run(
            listen_address,
            web_config_file,
            Credentials(
                args.healthcheck_cert_file,
                args.healthcheck_key_file,
                args.healthcheck_username,
                args.healthcheck_password_file,
            ),
        )
    if args.hash_password:
        return _hash_password()
    logs.setup(args.log_level, args.log_format)
    if not args.telemetry_path.startswith("/") or args.telemetry_path in (
        "/",
        "/-/healthy",
        "/-/ready",
    ):
        return _usage(f"--web.telemetry-path {args.telemetry_path!r} must be a free absolute path")
    if args.max_connections < 1:
        return _usage(f"--web.max-connections {args.max_connections} must be at least 1")
    try:
        listen = parse_listen_address(args.listen_address)
        shard = parse_shard(args.shard) if args.shard else None
        parse_duration(args.auto_reload_interval)
    except ValueError as exc:
        return _usage(str(exc))
    if shard is not None:
        export_shard(*shard)
    web = None
    if args.web_config_file:
        try:
            web = load_web_config(args.web_config_file)
        except WebConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    def prepare(settings: Settings) -> Settings:
        """What this process polls of a loaded configuration."""
        if shard is not None:
            index, count = shard
            settings = replace(
                settings,
                accounts=tuple(a for a in settings.accounts if shard_of(a.name, count) == index),
            )
            if not settings.accounts:
                log.warning(
                    "this shard has no accounts to poll; it serves only its own health metrics",
                    extra={"fields": {"shard": args.shard}},
                )
        return settings

    simulator = None
    if args.demo:
        from exporter.demo import start_demo

        simulator, demo_settings = start_demo()
        settings = prepare(demo_settings)

        def load() -> Settings:
            return settings

    else:

        def load() -> Settings:
            return prepare(load_config(args.config_file))

        try:
            settings = load()
        except ConfigError as exc:
            for problem in exc.problems:
                print(f"error: {problem}", file=sys.stderr)
            return 2

    if args.config_check:
        heading = (
            "--demo: no configuration file was read; the demo polls the built-in simulator"
            if args.demo
            else f"{args.config_file}: configuration is valid"
        )
        print(describe(settings, heading, args.shard))
        if web is not None:
            print(f"{args.web_config_file}: web config is valid: {web.describe()}")
        return 0

    try:
        if args.once:
            return _run_once(settings)
        source = None if args.demo else Path(args.config_file)
        return _serve(settings, load, source, listen, args, web)
    finally:
        if simulator is not None:
            simulator.stop()


def _web_reload_metrics(store: Store) -> Callable[[bool], None]:
    last_success = time.time()

    def loaded(applied: bool) -> None:
        nonlocal last_success
        if applied:
            last_success = time.time()
        store.set_process(render_reload(applied, last_success, "web_config"))

    return loaded


class SignalPipe:
    """Signals as bytes on a pipe that the main thread reads. The interpreter writes the
    signal's number there itself, from whichever thread the signal lands on
    (``signal.set_wakeup_fd``); the Python handler does nothing. No handler code runs in
    the middle of other code: it can take no lock that code holds, start no thread, and
    raise nothing into it."""

    def __init__(self, *signums: int) -> None:
        self._read, write = os.pipe()
        os.set_blocking(write, False)
        signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        for signum in signums:
            signal.signal(signum, self._ignore)

    @staticmethod
    def _ignore(signum: int, frame: FrameType | None) -> None:
        """The byte on the pipe is the signal's delivery; this only replaces the default
        action (which would end the process)."""

    def next(self) -> int:
        """Wait for the next signal; its number."""
        return os.read(self._read, 1)[0]


def _hash_password() -> int:
    """--web.hash-password: one line from stdin (typed unseen at a terminal) -> bcrypt."""
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


def describe(settings: Settings, heading: str, shard: str | None) -> str:
    """What would be polled, for --config.check; never shows a token."""
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
        selection = (
            ", ".join(s.describe() for s in account.autoresponders)
            if account.autoresponders
            else "all autoresponders"
        )
        tls = (
            "TLS verification OFF"
            if account.tls_insecure_skip_verify
            else f"ca_file={account.ca_file}"
            if account.ca_file
            else "system CAs"
        )
        lines.append(
            f"account {account.name}: POST {account.shown_url} as {account.username} "
            f"(usertoken set), requesttype {account.request_type}, "
            f"groupings {','.join(account.groupings)}, page_size {account.page_size}, "
            f"every {format_duration(account.poll_interval)}, {selection}, {tls}"
        )
    return "\n".join(lines)


def _run_once(settings: Settings) -> int:
    store = Store(a.name for a in settings.accounts)
    store.set_process(render_reload(True, time.time()))
    pollers = Pollers(settings.accounts, store, settings.max_concurrency)
    ok = pollers.poll_all_once()
    exposition = store.exposition
    out = sys.stdout.buffer
    for part in exposition.parts(False):
        out.write(part)
    out.write(runtime_metrics(False))
    out.flush()
    return 0 if ok else 1


def _serve(
    settings: Settings,
    load: Callable[[], Settings],
    source: Path | None,
    listen: tuple[str, int],
    args: argparse.Namespace,
    web: WebConfig | None,
) -> int:
    telemetry_path: str = args.telemetry_path
    raise_open_files_limit(args.max_connections)
    store = Store(a.name for a in settings.accounts)  # not ready until each has polled
    fleet = Fleet(store, settings.max_concurrency)
    reloader = Reloader(load, fleet, store, source)
    if web is not None:
        web.on_reload = _web_reload_metrics(store)
        web.on_reload(True)
    for account in settings.accounts:
        if account.tls_insecure_skip_verify:
            log.warning(
                "TLS certificate verification is disabled for this account",
                extra={"fields": {"account": account.name}},
            )
    views = StatusViews(
        fleet.pollers,
        lambda: store.generation,
        reloader.state,
        lambda: reloader.settings,
        telemetry_path,
        demo=args.demo,
        config_file=None if source is None else str(source),
    )
    pages = views.pages().items()
    routes = {path: page_route(page.content_type, page.body) for path, page in pages}
    routes["/-/reload"] = lifecycle_route(reloader.reload, args.enable_lifecycle)
    try:
        server = ExporterServer(
            listen,
            store,
            telemetry_path,
            web=web,
            routes=routes,
            max_connections=args.max_connections,
        )
    except OSError as exc:
        taken = (
            "; another process uses it: choose another address with --web.listen-address"
            if exc.errno == errno.EADDRINUSE
            else ""
        )
        log.error(
            f"cannot listen on {listen[0] or '*'}:{listen[1]}: {exc.strerror}{taken}",
            extra={"fields": {"address": f"{listen[0]}:{listen[1]}"}},
        )
        return 1
    stop = threading.Event()
    signals = SignalPipe(signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    server.start_background()
    reloader.start(settings)
    auto_reload = parse_duration(args.auto_reload_interval)
    if auto_reload > 0 and source is not None:
        reloader.watch(auto_reload, stop)
    port = server.server_address[1]
    scheme = "https" if web is not None and web.tls else "http"
    base_url = f"{scheme}://{url_host(listen[0])}:{port}"
    log.info(
        "pinpointe-exporter started",
        extra={
            "fields": {
                "version": __version__,
                "address": f"{listen[0]}:{port}",
                "accounts": len(settings.accounts),
                "web": web.describe() if web is not None else "no TLS, no basic auth",
            }
        },
    )
    if args.demo:
        log.info(
            "demo mode: serving SIMULATED Pinpointe data, not a real account; open "
            f"{base_url}/ (status page) or {base_url}{telemetry_path}",
            extra={"fields": {"poll_interval_seconds": settings.poll_interval}},
        )
    while (signum := signals.next()) == signal.SIGHUP:
        reloader.request("SIGHUP")
    log.info("shutting down", extra={"fields": {"signal": signal.Signals(signum).name}})
    stop.set()
    server.shutdown()
    server.server_close()
    fleet.shutdown()
    return 0
