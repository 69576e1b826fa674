"""cabundle.py with the simulator over HTTPS: an account's ca_file is what the requests
trust, read again when it changes, and never opened by OpenSSL itself (a FIFO swapped in
after any check cannot hold the poll)."""

from __future__ import annotations

import os
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from exporter.config import files
from exporter.pinpointe import PinpointeClient, PollError
from exporter.simulator import SimAccount, Simulator
from tests.conftest import account_settings

TOKEN = "tok-ca-bundle-71c4"


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def https(ca: trustme.CA) -> Iterator[Simulator]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    sim = Simulator([SimAccount(token=TOKEN, autoresponders=3)]).start(tls=context)
    try:
        yield sim
    finally:
        sim.stop()


def poll(client: PinpointeClient) -> int:
    records: list[object] = []
    client.fetch("autoresponder", records.extend)
    return len(records)


def test_the_ca_file_is_trusted_and_read_again_when_it_changes(
    https: Simulator, ca: trustme.CA, tmp_path: Path
) -> None:
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    client = PinpointeClient(account_settings(https, TOKEN, ca_file=str(bundle)))
    try:
        for trusted in (True, False, False, True, False):
            # another CA each time it is not: this server is a stranger to it
            (ca if trusted else trustme.CA()).cert_pem.write_to_path(str(bundle))
            if trusted:
                assert poll(client) == 3
                continue
            with pytest.raises(PollError) as raised:
                poll(client)
            assert raised.value.reason == "connection"
            assert "unable to get local issuer certificate" in raised.value.message
    finally:
        client.close()


def test_a_ca_file_swapped_for_a_fifo_after_its_check_fails_the_poll_not_holds_it(
    https: Simulator, ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    client = PinpointeClient(account_settings(https, TOKEN, ca_file=str(bundle)))
    checked = files.check_regular

    def check_then_swap(path: Path | str, limit: int) -> None:
        checked(path, limit)
        if Path(path) == bundle and not bundle.is_fifo():
            bundle.unlink()
            os.mkfifo(bundle)

    monkeypatch.setattr(files, "check_regular", check_then_swap)
    outcome: list[BaseException | int] = []

    def polled() -> None:
        try:
            outcome.append(poll(client))
        except BaseException as exc:
            outcome.append(exc)

    polling = threading.Thread(target=polled, daemon=True)
    polling.start()
    polling.join(60)
    try:
        if polling.is_alive():  # release the blocked open, then fail
            with open(bundle, "wb"):
                pass
            polling.join(60)
            pytest.fail("the poll blocked on a ca_file swapped for a FIFO")
    finally:
        client.close()
    (error,) = outcome
    assert isinstance(error, PollError), error
    assert error.reason == "connection"
    assert error.message.startswith(f"ca_file {bundle} is a FIFO (named pipe), not a regular file")
    assert https.request_count() == 0
