"""The serve mode, wired: the store, the polling fleet and its reloads, the status
views and the HTTP server, until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import errno
import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

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
    server.start_background()
    reloader.start(settings)
    auto_reload = parse_duration(args.auto_reload_interval)
    if auto_reload > 0 and source is not None:
        reloader.watch(auto_reload, stop)
    _announce(server, listen, settings, args, web)
    while (signum := next_signal()) == signal.SIGHUP:
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


# The signals the serve mode takes: SIGTERM and SIGINT stop it, SIGHUP reloads.
SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGHUP})


def hold_signals() -> None:
    """Keep SIGNALS pending until the main thread takes them (``next_signal``). Called
    before any thread starts, so that every thread inherits the mask: no handler ever
    runs inside other code (it could take no lock that code holds, start no thread and
    raise nothing into it), and a SIGTERM in a storm of SIGHUPs is never lost (a pending
    signal stays pending)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)


def next_signal() -> int:
    """Wait for the next of SIGNALS; its number."""
    return signal.sigwaitinfo(SIGNALS).si_signo
