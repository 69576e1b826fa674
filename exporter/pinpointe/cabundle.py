"""An account's ``ca_file`` as the requests are given it.

OpenSSL opens a CA bundle path with a plain ``open()``: a file swapped for a FIFO
between any check and that open would hold the poll, and its slot, forever. So the
file is read here, without blocking and within its bound (config/files.py), whenever
it changes, and OpenSSL is given a memory file holding what was read.
"""

from __future__ import annotations

import os

from exporter.config.files import (
    MAX_PEM_FILE_SIZE,
    FileProblem,
    memory_file,
    memory_path,
    read_bytes,
)


class CaBundle:
    """One ``ca_file``, read again when it changes (a rotated bundle is used at once)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._signature: tuple[int, ...] | None = None
        self._fd: int | None = None
        self.generation = 0  # counts the bundles read: a new one needs new connections

    def verify(self) -> str:
        """The path to give as ``verify``: the memory file of the bundle as it is now (the
        configured path itself where there are no memory files). Raises FileProblem."""
        try:
            info = os.stat(self.path)
        except OSError as exc:
            raise FileProblem(self.path, f"cannot be read: {exc.strerror}") from None
        signature = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
        if signature != self._signature:
            fd = memory_file(read_bytes(self.path, MAX_PEM_FILE_SIZE), "pinpointe-ca-file")
            self.close()
            self._fd, self._signature = fd, signature
            self.generation += 1
        return self.path if self._fd is None else memory_path(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._signature = None
