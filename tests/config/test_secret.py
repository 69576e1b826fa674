"""secret.py: a rotated token file keeps the redaction bounded, and URLs show no secret."""

from __future__ import annotations

import os
from pathlib import Path

from exporter import logs
from exporter.config import FileSecret
from exporter.config.secret import read_token_file, redacted_url, url_secrets


def test_rotations_forget_all_but_the_previous_token(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("rotated-token-0000")
    secret = FileSecret(path)
    before = len(logs._secrets)
    for index in range(1, 201):
        path.write_text(f"rotated-token-{index:04d}")
        os.utime(path, ns=(index, index))  # a new mtime even within one clock tick
        assert secret.reveal() == f"rotated-token-{index:04d}"
    assert len(logs._secrets) - before <= len(secret.forms())
    assert logs.redact("rotated-token-0200 rotated-token-0199") == "<redacted> <redacted>"
    assert logs.redact("rotated-token-0100") == "rotated-token-0100"


def test_urls_are_shown_without_their_secrets() -> None:
    url = "https://user:p4ssw0rd@host/apijson.php?usertoken=t0ken-abc&client=Pinpointe#frag"
    assert redacted_url(url) == (
        "https://user:<redacted>@host/apijson.php?usertoken=<redacted>&client=<redacted>#<redacted>"
    )
    assert url_secrets(url) == ("p4ssw0rd", "t0ken-abc", "frag")
    assert redacted_url("https://TOKEN12345@host/") == "https://<redacted>@host/"
    assert redacted_url("https://lonely:@host/") == "https://<redacted>@host/"


def test_a_byte_order_mark_is_not_part_of_the_token(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_bytes(b"\xef\xbb\xbfSecretTok12345\r\n")  # as Windows' Notepad saves it
    assert read_token_file(path) == "SecretTok12345"
