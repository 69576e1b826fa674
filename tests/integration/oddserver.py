"""A one-purpose HTTP server for answers the simulator does not give, and one poll of it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from exporter.collector import AccountFetcher
from exporter.config import AccountConfig, Secret
from exporter.pinpointe import PinpointeClient, PollError

ODD_SERVER_TOKEN = "tok-odd-server-58c2"


class OddServer:
    """A one-purpose HTTP server on 127.0.0.1 for answers the simulator does not give."""

    def __init__(self, respond: Callable[[BaseHTTPRequestHandler], None]) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                respond(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/apijson.php"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def poll_odd_server(
    respond: Callable[[BaseHTTPRequestHandler], None], **overrides: Any
) -> PollError:
    server = OddServer(respond)
    account = AccountConfig(
        name="acme",
        api_url=server.url,
        username="demo",
        usertoken=Secret(ODD_SERVER_TOKEN),
        poll_interval=60,
        timeout=60,  # never meant to expire: a test of a timeout passes its own
        stale_after=600,
    )
    account = replace(account, **overrides)
    client = PinpointeClient(account)
    try:
        with pytest.raises(PollError) as raised:
            AccountFetcher(account, client).fetch_snapshot()
        return raised.value
    finally:
        client.close()
        server.close()
