"""The serve mode, wired: the store, the polling fleet and its reloads, the status
views and the HTTP server, until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType

from exporter import __version__
from exporter.collector import Fleet, Reloader
from exporter.config import Settings, parse_duration
from exporter.exposition import Store, render_reload
from exporter.status import StatusViews
from exporter.web import (
    ExporterServer,
    Route,
    WebConfig,
    lifecycle_route,
    page_route,
    raise_open_files_limit,
    url_host,
)

log = logging.getLogger("exporter")


def serve(
    settings: Settings,
    load: Callable[[], Settings],
    source: Path | None,
    listen: tuple[str, int],
    args: argparse.Namespace,
    web: WebConfig | None,
) -> int:
    """Serve until a signal to stop; 1 if the address cannot be listened on."""
    raise_open_files_limit(args.max_connections)
    store = Store(a.name for a in settings.accounts)  # not ready until each has polled
    fleet = Fleet(store, settings.max_concurrency)
    reloader = Reloader(load, fleet, store, source)
    if web is not None:
        web.on_reload = _web_reload_metrics(store)
        web.on_reload(True)
    _warn_insecure(settings)
    views = StatusViews(
        fleet.pollers,
        lambda: store.generation,
        reloader.state,
        lambda: reloader.settings,
        args.telemetry_path,
        demo=args.demo,
        config_file=None if source is None else str(source),
    )
    routes = _routes(views, reloader, args.enable_lifecycle)
    server = _listen(listen, store, args, web, routes)
    if server is None:
        return 1
    stop = threading.Event()
    signals = SignalPipe(signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    server.start_background()
    reloader.start(settings)
    auto_reload = parse_duration(args.auto_reload_interval)
    if auto_reload > 0 and source is not None:
        reloader.watch(auto_reload, stop)
    _announce(server, listen, settings, args, web)
    while (signum := signals.next()) == signal.SIGHUP:
        reloader.request("SIGHUP")
    log.info("shutting down", extra={"fields": {"signal": signal.Signals(signum).name}})
    stop.set()
    server.shutdown()
    server.server_close()
    fleet.shutdown()
    return 0


def _routes(views: StatusViews, reloader: Reloader, lifecycle: bool) -> dict[str, Route]:
    """The status views and /-/reload, beside what the server answers itself."""
    routes = {
        path: page_route(page.content_type, page.body) for path, page in views.pages().items()
    }
    routes["/-/reload"] = lifecycle_route(reloader.reload, lifecycle)
    return routes


def _listen(
    listen: tuple[str, int],
    store: Store,
    args: argparse.Namespace,
    web: WebConfig | None,
    routes: Mapping[str, Route],
) -> ExporterServer | None:
    try:
        return ExporterServer(
            listen,
            store,
            args.telemetry_path,
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
        return None


def _warn_insecure(settings: Settings) -> None:
    for account in settings.accounts:
        if account.tls_insecure_skip_verify:
            log.warning(
                "TLS certificate verification is disabled for this account",
                extra={"fields": {"account": account.name}},
            )


def _announce(
    server: ExporterServer,
    listen: tuple[str, int],
    settings: Settings,
    args: argparse.Namespace,
    web: WebConfig | None,
) -> None:
    """The start line (tests and users read the port from it) and the demo's pointer."""
    port = server.server_address[1]
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
        scheme = "https" if web is not None and web.tls else "http"
        base_url = f"{scheme}://{url_host(listen[0])}:{port}"
        log.info(
            "demo mode: serving SIMULATED Pinpointe data, not a real account; open "
            f"{base_url}/ (status page) or {base_url}{args.telemetry_path}",
            extra={"fields": {"poll_interval_seconds": settings.poll_interval}},
        )


def _web_reload_metrics(store: Store) -> Callable[[bool], None]:
    """What the web config reports its reloads to: the web config reload gauges."""
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
