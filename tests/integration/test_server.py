"""The HTTP server of a running exporter: half-sent and malformed requests, slowloris
sockets against the connection cap, and accepting when descriptors run out."""

from __future__ import annotations

import re
import resource
import selectors
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from exporter.simulator import SimAccount, Simulator
from tests.conftest import (
    PATIENCE,
    ExporterProcess,
    account_config,
    closed_by_peer,
    parse_samples,
    proc_stats,
    raw_exchange,
    run_exporter,
    running_threads,
    spawn_exporter,
    status_of,
    wait_for,
    wait_for_connections_released,
)

linux_only = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


TOKEN = "tok-server-4a7d"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExporterProcess]:
    handle = spawn_exporter(tmp_path_factory.mktemp("server"), None, "--demo")
    yield handle
    handle.stop()


def responses(raw: bytes) -> list[int]:
    """Status codes of the responses in a raw exchange, in order."""
    return [int(code) for code in re.findall(rb"HTTP/1\.[01] (\d{3}) ", raw)]


def test_http_0_9_and_half_sent_requests_get_no_exposition(demo: ExporterProcess) -> None:
    for request in (b"GET /metrics", b"GET /metrics\r\n", b"GET /metrics HTTP/1.1\r\nHost: x"):
        answer = raw_exchange(demo.port, request)
        assert b"pinpointe_up" not in answer, request
        assert answer == b"" or status_of(answer) == 400, request


def test_a_header_line_without_a_colon_is_400(demo: ExporterProcess) -> None:
    answer = raw_exchange(demo.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n")
    assert status_of(answer) == 400
    assert b"pinpointe_up" not in answer


def test_a_request_body_is_never_read_as_the_next_request(demo: ExporterProcess) -> None:
    smuggled = b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
    with_length = (
        b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(smuggled)
        + smuggled
        + b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert responses(raw_exchange(demo.port, with_length)) == [200, 200]  # body discarded
    chunked = (
        b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n" % len(smuggled)
        + smuggled
        + b"\r\n0\r\n\r\n"
    )
    assert responses(raw_exchange(demo.port, chunked)) == [411]  # refused, connection closed
    too_big = b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + smuggled
    assert responses(raw_exchange(demo.port, too_big)) == [413]
    assert requests.get(demo.url + "/-/healthy", timeout=10).status_code == 200


def trickle_until_closed(sockets: list[socket.socket], seconds: float) -> int:
    """Send one header byte on every open socket about twice a second until the server has
    closed them all; returns how many it left open after ``seconds`` (a bound, not a
    measurement: the deadline is far shorter)."""
    selector = selectors.DefaultSelector()
    for sock in sockets:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    open_ = set(sockets)
    end = time.monotonic() + seconds
    while open_ and time.monotonic() < end:
        for key, _ in selector.select(timeout=0.5):
            assert isinstance(key.fileobj, socket.socket)
            sock = key.fileobj
            try:
                gone = sock.recv(4096) == b""
            except BlockingIOError:
                gone = False
            except OSError:
                gone = True
            if gone:
                selector.unregister(sock)
                open_.discard(sock)
        for sock in list(open_):
            try:
                sock.send(b"x")
            except BlockingIOError:
                pass
            except OSError:
                selector.unregister(sock)
                open_.discard(sock)
    selector.close()
    return len(open_)


@linux_only
def test_slowloris_sockets_are_capped_cut_and_do_not_block_a_scrape(tmp_path: Path) -> None:
    cap = 20
    handle = spawn_exporter(tmp_path, None, "--demo", f"--web.max-connections={cap}")
    pid = handle.process.pid
    attackers: list[socket.socket] = []
    try:
        _, threads_0, fds_0 = proc_stats(pid)
        # a kept-alive connection idle after its answer may be evicted to make room
        idle = socket.create_connection(("127.0.0.1", handle.port), timeout=60)
        attackers.append(idle)
        idle.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
        assert idle.recv(4096).startswith(b"HTTP/1.1 200")
        for index in range(300):
            sock = socket.create_connection(("127.0.0.1", handle.port), timeout=10)
            sock.sendall((b"", b"G", b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-")[index % 3])
            attackers.append(sock)
        _, threads_1, fds_1 = proc_stats(pid)
        response = requests.get(handle.url + "/metrics", timeout=60)
        assert response.status_code == 200
        assert parse_samples(response.text)
        _, threads_2, fds_2 = proc_stats(pid)
        figures = f"threads {threads_0} -> {threads_1}, {threads_2}; "
        figures += f"fds {fds_0} -> {fds_1}, {fds_2}"
        print(figures)
        # one thread and one descriptor a connection, at most ``cap`` of them (and the
        # demo's own poll connection, which may be open at either moment)
        assert max(threads_1, threads_2) <= threads_0 + cap + 2, figures
        assert closed_by_peer(idle)  # evicted (the attackers came later)
        assert max(fds_1, fds_2) <= fds_0 + cap + 3, figures
        # every attacker is cut off (evicted, or at the request deadline) however
        # steadily it trickles header bytes
        assert trickle_until_closed(attackers, PATIENCE) == 0
        assert requests.get(handle.url + "/-/healthy", timeout=10).status_code == 200

        wait_for_connections_released(
            pid, threads_0, fds_0, PATIENCE, "the connections' threads and descriptors to go"
        )
    finally:
        for sock in attackers:
            sock.close()
        handle.stop()


def open_files_limit(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no open files limit")


def low_open_files_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 128))


def busy_share(pid: int, samples: int = 40) -> float:
    """The share of moments, sampled about every 50 ms, at which some thread of ``pid``
    was running or waiting for a CPU (state R). A busy loop is found so whenever it is
    sampled, however loaded the machine; a loop that sleeps between tries, hardly ever."""
    busy = 0
    for _ in range(samples):
        busy += running_threads(pid) > 0
        time.sleep(0.05)
    return busy / samples


@linux_only
def test_out_of_descriptors_accepting_pauses_instead_of_spinning(
    simulator: Callable[..., Simulator], tmp_path: Path
) -> None:
    # Not --demo: with its one account polled once, at start, the exporter has nothing to
    # do but accept.
    sim = simulator(SimAccount(token=TOKEN, autoresponders=2))
    config = {
        "poll_interval": "1h",
        "stale_after": "2h",
        "accounts": [account_config(sim, token=TOKEN)],
    }
    handle = spawn_exporter(tmp_path, config, preexec_fn=low_open_files_limit)
    flood: list[socket.socket] = []
    try:
        assert open_files_limit(handle.process.pid) == 128  # raised to the hard limit at start
        # More connections than the exporter has descriptors: accept fails with EMFILE.
        for _ in range(200):
            flood.append(socket.create_connection(("127.0.0.1", handle.port), timeout=10))
        wait_for(lambda: "pausing accepts" in handle.logs(), what="accept to run out of fds")
        share = busy_share(handle.process.pid)
        print(f"during EMFILE: some thread running or runnable in {share:.0%} of samples")
        assert share < 0.5, f"some thread running or runnable in {share:.0%} of samples"
        for sock in flood:
            sock.close()
        wait_for(
            lambda: requests.get(handle.url + "/-/healthy", timeout=5).status_code == 200,
            what="/-/healthy after the flood",
        )
        assert handle.process.poll() is None
    finally:
        for sock in flood:
            sock.close()
        handle.stop()


@pytest.mark.parametrize("value", ["0", "-5", "many"])
def test_max_connections_must_be_a_positive_number(value: str) -> None:
    result = run_exporter("--demo", f"--web.max-connections={value}")
    assert result.returncode == 2
    assert "--web.max-connections" in result.stderr
    assert "unrecognized" not in result.stderr  # refused as a value, not as an unknown flag
