"""The HTTP side: serving /metrics and the other endpoints, safely.

``server`` accepts connections within a cap (one thread each), ``connections`` holds
the cap, the deadlines and eviction, ``request`` reads a request head strictly,
``handler`` answers one request (``/metrics`` in the format and encoding asked for,
health, readiness, the routes other layers add), ``routes`` is what such a route
replies, ``webconfig`` reads ``--web.config.file`` (TLS via ``tls``, basic auth and
rate limits via ``policy``), ``address`` parses the listen address, and
``healthcheck`` is the ``--healthcheck`` probe.
"""

from exporter.web.address import parse_listen_address, url_host
from exporter.web.connections import DEFAULT_MAX_CONNECTIONS, raise_open_files_limit
from exporter.web.routes import (
    LIFECYCLE_DISABLED,
    Reply,
    RequestGuard,
    Route,
    lifecycle_route,
    page_route,
)
from exporter.web.server import ExporterServer
from exporter.web.webconfig import WebConfig, WebConfigError, load_web_config, parse_web_config

__all__ = [
    "DEFAULT_MAX_CONNECTIONS",
    "LIFECYCLE_DISABLED",
    "ExporterServer",
    "Reply",
    "RequestGuard",
    "Route",
    "WebConfig",
    "WebConfigError",
    "lifecycle_route",
    "load_web_config",
    "page_route",
    "parse_listen_address",
    "parse_web_config",
    "raise_open_files_limit",
    "url_host",
]
