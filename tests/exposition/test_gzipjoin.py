"""One gzip member joined from chunks compressed separately; CRC-32 combination."""

from __future__ import annotations

import gzip
import zlib

from hypothesis import given
from hypothesis import strategies as st

from exporter.exposition.gzipjoin import Chunk, OpenGzip, crc32_combine, python_crc32_combine


@given(st.binary(max_size=3000), st.binary(max_size=3000))
def test_crc32_combine_equals_crc32_of_the_concatenation(first: bytes, second: bytes) -> None:
    expected = zlib.crc32(first + second)
    assert python_crc32_combine(zlib.crc32(first), zlib.crc32(second), len(second)) == expected
    assert crc32_combine(zlib.crc32(first), zlib.crc32(second), len(second)) == expected


def test_the_standard_librarys_crc32_combine_is_used_where_python_has_it() -> None:
    assert crc32_combine is getattr(zlib, "crc32_combine", python_crc32_combine)


@given(st.lists(st.binary(max_size=2000), max_size=6), st.binary(max_size=500))
def test_joined_chunks_and_a_tail_are_one_gzip_member_of_their_concatenation(
    pieces: list[bytes], tail: bytes
) -> None:
    body = b"".join(OpenGzip.join([Chunk.of(piece) for piece in pieces]).finish(tail))
    assert gzip.decompress(body) == b"".join(pieces) + tail
    reader = zlib.decompressobj(16 + zlib.MAX_WBITS)
    reader.decompress(body)
    assert reader.eof and reader.unused_data == b""
