"""errors.py: a broken connection or a failed TLS handshake is reported with what to
check for that cause, found from real servers on loopback."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import trustme

from exporter.config import AccountConfig, Secret
from exporter.pinpointe import PinpointeClient, PollError
from exporter.simulator import SimAccount, Simulator
from tests.conftest import account_settings
from tests.integration.oddserver import poll_odd_server

TOKEN = "tok-errors-5b0e"
# a simulator serving HTTPS with a certificate for a host name, signed by a CA
ServedBy = Callable[[str, trustme.CA], Simulator]


def close_without_answer(handler: BaseHTTPRequestHandler) -> None:
    handler.close_connection = True


def answer_with_a_banner(handler: BaseHTTPRequestHandler) -> None:
    handler.wfile.write(b"SSH-2.0-OpenSSH_9.2\r\n")
    handler.close_connection = True


@pytest.mark.parametrize(
    ("respond", "cause"),
    [
        (close_without_answer, "Remote end closed connection without response"),
        (answer_with_a_banner, "SSH-2.0-OpenSSH_9.2"),
    ],
    ids=["closed", "not-http"],
)
def test_a_connection_broken_before_an_answer_says_so_and_what_to_check(
    respond: Callable[[BaseHTTPRequestHandler], None], cause: str
) -> None:
    error = poll_odd_server(respond)
    assert error.reason == "connection"
    assert "broke before an answer came (" in error.message, error.message
    assert cause in error.message
    assert error.message.endswith(
        "the server closed it or does not speak HTTP there: check the host, port and scheme "
        "in api_url, and any proxy on the way"
    )
    assert "('Connection aborted.'" not in error.message


def tls_failure(sim: Simulator, **overrides: Any) -> PollError:
    client = PinpointeClient(account_settings(sim, TOKEN, **overrides))
    try:
        with pytest.raises(PollError) as raised:
            client.fetch("autoresponder", lambda records: None)
    finally:
        client.close()
    assert raised.value.reason == "connection"
    return raised.value


@pytest.fixture
def served_by() -> Iterator[ServedBy]:
    started: list[Simulator] = []

    def start(certificate_for: str, ca: trustme.CA) -> Simulator:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert(certificate_for).configure_cert(context)
        sim = Simulator([SimAccount(token=TOKEN)]).start(tls=context)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


def test_a_certificate_for_another_host_names_the_host(served_by: ServedBy, tmp_path: Path) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    sim = served_by("pinpointe.example", ca)
    error = tls_failure(sim, ca_file=str(tmp_path / "ca.pem"))
    assert "mismatch" in error.message
    assert error.message.endswith(
        "the server's certificate is not for this host: check the host in api_url"
    )


def test_an_unknown_ca_points_at_ca_file(served_by: ServedBy) -> None:
    sim = served_by("127.0.0.1", trustme.CA())
    error = tls_failure(sim)
    assert error.message.endswith(
        "check ca_file (the CA that signed the server's certificate) and the server's "
        "certificate chain"
    )


@pytest.fixture
def closes_on_accept() -> Iterator[int]:
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            connection.recv(4096)  # the ClientHello
            connection.close()

    threading.Thread(target=serve, daemon=True).start()
    yield int(listener.getsockname()[1])
    listener.close()


def test_a_handshake_the_server_hangs_up_on_points_at_the_port(closes_on_accept: int) -> None:
    account = AccountConfig(
        name="acme",
        api_url=f"https://127.0.0.1:{closes_on_accept}/apijson.php",
        username="demo",
        usertoken=Secret(TOKEN),
        poll_interval=60,
        timeout=60,
        stale_after=600,
    )
    client = PinpointeClient(account)
    try:
        with pytest.raises(PollError) as raised:
            client.fetch("autoresponder", lambda records: None)
    finally:
        client.close()
    assert raised.value.reason == "connection"
    assert raised.value.message.endswith(
        "the server closed the connection during the handshake: check that the port in "
        "api_url serves HTTPS"
    ), raised.value.message


def answer_nested_20000_deep(handler: BaseHTTPRequestHandler) -> None:
    body = b'{"status": "SUCCESS", "data": [{"autoresponderid": "1", "x": ' + b"[" * 20_000
    body += b"]" * 20_000 + b"}]}"
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def test_json_nested_too_deep_is_named_as_such_not_as_malformed() -> None:
    error = poll_odd_server(answer_nested_20000_deep)
    assert error.reason == "invalid_response"
    assert error.message.endswith(
        "answered HTTP 200 with JSON nested deeper than it can be read (about 1000 levels; "
        "a Pinpointe answer has a few)"
    ), error.message
