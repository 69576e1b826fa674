"""The exporter's HTTP side under hostile or clumsy clients: paths, methods, sizes, stalls."""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import trustme
import yaml

from tests.conftest import (
    PATIENCE,
    ExporterProcess,
    parse_samples,
    proc_stats,
    raw_exchange,
    spawn_exporter,
    status_of,
    wait_for_connections_released,
    write_server_cert,
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExporterProcess]:
    handle = spawn_exporter(tmp_path_factory.mktemp("http"), None, "--demo")
    yield handle
    handle.stop()


def scrape_ok(handle: ExporterProcess) -> bool:
    response = requests.get(handle.url + "/metrics", timeout=10)
    return response.status_code == 200 and bool(parse_samples(response.text))


def test_unknown_paths_are_404(demo: ExporterProcess) -> None:
    for path in ("/nope", "/metrics/", "/metricsx", "/-/", "/-/healthy/x", "/METRICS"):
        response = demo.get(path)
        assert response.status_code == 404, path
        assert response.text == "not found\n"
    assert demo.get("/metrics?x=1").status_code == 200  # a query string is ignored


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "FOO"])
def test_other_methods_are_405(demo: ExporterProcess, method: str) -> None:
    for path in ("/metrics", "/", "/-/healthy"):
        response = requests.request(method, demo.url + path, data=b"x" * 100, timeout=10)
        assert response.status_code == 405, (method, path)
        assert response.headers["Allow"] == "GET, HEAD"


def test_trace_and_connect_are_405_too(demo: ExporterProcess) -> None:
    for line in (b"TRACE /metrics HTTP/1.1", b"CONNECT 127.0.0.1:1 HTTP/1.1"):
        response = raw_exchange(demo.port, line + b"\r\nHost: x\r\n\r\n")
        assert status_of(response) == 405, line


def test_head_has_headers_and_no_body(demo: ExporterProcess) -> None:
    response = requests.head(demo.url + "/metrics", timeout=10)
    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) > 1000
    assert response.content == b""


def test_oversized_requests_are_refused(demo: ExporterProcess) -> None:
    long_line = b"GET /metrics?" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    assert status_of(raw_exchange(demo.port, long_line)) == 414
    one_big_header = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 40_000 + b"\r\n\r\n"
    assert status_of(raw_exchange(demo.port, one_big_header)) == 431
    many = b"".join(b"X-H%d: %s\r\n" % (i, b"c" * 300) for i in range(120))
    assert status_of(raw_exchange(demo.port, b"GET /metrics HTTP/1.1\r\n" + many + b"\r\n")) == 431
    huge = b"GET /metrics HTTP/1.1\r\nX-Huge: " + b"d" * 2_000_000 + b"\r\n\r\n"
    # the server answers 431 and closes while we are still sending; the reset that
    # follows may discard the answer before we read it: refused either way
    answer = raw_exchange(demo.port, huge)
    assert answer == b"" or status_of(answer) == 431
    # a request just under the limits is fine
    fine = {f"X-Ok-{i}": "e" * 200 for i in range(50)}
    assert requests.get(demo.url + "/metrics", headers=fine, timeout=10).status_code == 200
    assert scrape_ok(demo)


def test_keep_alive_serves_several_requests_on_one_connection(demo: ExporterProcess) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", demo.port, timeout=10)
    try:
        statuses = []
        sockets = set()
        for path in ("/metrics", "/-/healthy", "/nope", "/metrics"):
            connection.request("GET", path)
            sockets.add(id(connection.sock))
            response = connection.getresponse()
            response.read()
            statuses.append(response.status)
        assert statuses == [200, 200, 404, 200]
        assert len(sockets) == 1  # one connection served all four
    finally:
        connection.close()


def test_stalled_clients_do_not_block_scrapes(demo: ExporterProcess) -> None:
    """Half a request, then silence, from many sockets at once: scrapes still succeed."""
    stalled = []
    try:
        for index in range(40):
            sock = socket.create_connection(("127.0.0.1", demo.port), timeout=10)
            partial = b"GET /metrics HTTP/1.1\r\nHost: x\r\n" if index % 2 else b"GE"
            sock.sendall(partial)
            stalled.append(sock)
        for _ in range(5):
            assert scrape_ok(demo)
        # the stalled connections are still open and unanswered
        for sock in stalled:
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                sock.recv(1)
    finally:
        for sock in stalled:
            sock.close()
    assert scrape_ok(demo)


def test_a_client_that_never_reads_does_not_block_scrapes(demo: ExporterProcess) -> None:
    """Pipelined requests whose responses are never read fill the socket buffers."""
    sock = socket.create_connection(("127.0.0.1", demo.port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 200)
        for _ in range(3):
            assert scrape_ok(demo)
    finally:
        sock.close()


def test_stalled_tls_handshakes_do_not_block_https_scrapes(tmp_path: Path) -> None:
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    write_server_cert(server, tmp_path, "server")
    web = tmp_path / "web.yml"
    web.write_text(
        yaml.safe_dump({"tls_server_config": {"cert_file": "server.crt", "key_file": "server.key"}})
    )
    verify = str(tmp_path / "ca.pem")

    def ready(handle: ExporterProcess) -> bool:
        url = f"https://127.0.0.1:{handle.port}/-/ready"
        return requests.get(url, verify=verify, timeout=5).status_code == 200

    handle = spawn_exporter(tmp_path, None, "--demo", f"--web.config.file={web}", ready=ready)
    _, threads_before, fds_before = proc_stats(handle.process.pid)
    stalled = []
    try:
        for index in range(20):
            sock = socket.create_connection(("127.0.0.1", handle.port), timeout=10)
            if index % 2:  # the first bytes of a ClientHello, then nothing
                sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
            stalled.append(sock)
        context = ssl.create_default_context(cafile=verify)
        for _ in range(5):
            response = requests.get(
                f"https://127.0.0.1:{handle.port}/metrics", verify=verify, timeout=10
            )
            assert response.status_code == 200 and "pinpointe_up" in response.text
        with (
            socket.create_connection(("127.0.0.1", handle.port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            tls.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert tls.recv(100).startswith(b"HTTP/1.1 200")
        for sock in stalled:
            sock.close()

        # the server let go of the abandoned connections and their threads (within the
        # 10 s handshake timeout at worst)
        wait_for_connections_released(
            handle.process.pid,
            threads_before,
            fds_before,
            PATIENCE,
            "the stalled connections to go",
        )
    finally:
        for sock in stalled:
            sock.close()
        handle.stop()
