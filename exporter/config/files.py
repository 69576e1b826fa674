"""Reading a file the configuration names, without letting it stall or flood the process.

A FIFO opened for reading blocks until a writer comes, ``/dev/zero`` never ends and a
file may be any size: a path in a configuration file is not to be trusted with a plain
``read()``. Here the file is opened without blocking, refused unless it is a regular
file, and read only up to a bound.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from exporter.config.units import format_size

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class FileProblem(Exception):
    """Why a file cannot be used: ``problem`` follows the file's name ("is a FIFO ...",
    "cannot be read: ..."), and the message is both."""

    def __init__(self, path: Path | str, problem: str) -> None:
        super().__init__(f"{path} {problem}")
        self.path = path
        self.problem = problem


# A PEM file (a CA bundle, a certificate, a key) larger than this is refused; the
# whole Mozilla bundle is about 220 KB.
MAX_PEM_FILE_SIZE = 4 * 1024 * 1024


def check_regular(path: Path | str, limit: int) -> None:
    """Raise a FileProblem unless ``path`` is a regular file of at most ``limit`` bytes
    (for a file another library reads, such as a CA bundle OpenSSL opens)."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise FileProblem(path, f"cannot be read: {exc.strerror}") from None
    _check(path, info.st_mode, info.st_size, limit)


def _check(path: Path | str, mode: int, size: int, limit: int) -> None:
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
        raise FileProblem(path, f"is {kind}, not a regular file")
    if size > limit:
        raise FileProblem(path, f"is larger than {format_size(limit)}")


def read_bytes(path: Path | str, limit: int) -> bytes:
    """The content of the regular file ``path``, at most ``limit`` bytes long. Its type is
    checked before it is opened (opening a device can have effects of its own) and again
    on the descriptor (it may have been swapped meanwhile)."""
    check_regular(path, limit)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise FileProblem(path, f"cannot be read: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        _check(path, info.st_mode, 0, limit)
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, min(1 << 16, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise FileProblem(path, f"is larger than {format_size(limit)}")
        return b"".join(chunks)
    except OSError as exc:
        raise FileProblem(path, f"cannot be read: {exc.strerror}") from None
    finally:
        os.close(fd)


def read_text(path: Path | str, limit: int) -> str:
    """``read_bytes`` decoded as UTF-8; invalid UTF-8 is a FileProblem saying where."""
    data = read_bytes(path, limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise FileProblem(
            path,
            f"is not valid UTF-8 (byte 0x{data[exc.start]:02x} at line {line}, offset {exc.start})",
        ) from None


def memory_file(data: bytes, name: str) -> int | None:
    """An anonymous memory file holding ``data``: its descriptor (the caller closes it),
    whose path ``memory_path`` gives to a library that takes only paths (OpenSSL), so it
    never opens the configured path itself. None where there is no such file (not Linux,
    or no /proc)."""
    try:
        fd = os.memfd_create(name, os.MFD_CLOEXEC)
    except (AttributeError, OSError):
        return None
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if os.path.exists(memory_path(fd)):
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def memory_path(fd: int) -> str:
    return f"/proc/self/fd/{fd}"
