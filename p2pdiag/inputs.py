"""Reading a file the user named (a trace, a relay list, a key), bounded whatever it turns out to be.

A FIFO, a character device such as /dev/zero, a directory or a file larger than its kind can
plausibly be is refused in one line (UsageError, exit 2) before any read can block or grow
without bound. Nothing here imports more than the standard library.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from p2pdiag.errors import UsageError

MiB = 1 << 20


def _describe(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def open_regular(path: Path, what: str, max_bytes: int) -> int:
    """Open PATH for reading and return the descriptor, or raise UsageError naming WHAT
    (e.g. "--from-file") when it is missing, unreadable, not a regular file or over MAX_BYTES.

    O_NONBLOCK keeps the open itself from waiting for a FIFO's writer; the fstat after it looks
    at what was really opened, so a file swapped in between is judged as what it is."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise UsageError(f"{what} {path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{what} {path}: is a directory, not a file") from None
    except OSError as exc:
        raise UsageError(f"{what} {path}: cannot read it ({exc.strerror or exc})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UsageError(f"{what} {path}: is {_describe(info.st_mode)}; give a regular file")
        if info.st_size > max_bytes:
            raise UsageError(f"{what} {path}: {info.st_size} bytes, more than the {max_bytes} this can hold")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_bytes(path: Path, what: str, max_bytes: int) -> bytes:
    """The whole file, at most MAX_BYTES (a file that grows while read is cut there and refused)."""
    fd = open_regular(path, what, max_bytes)
    with os.fdopen(fd, "rb") as f:
        try:
            data = f.read(max_bytes + 1)
        except OSError as exc:
            raise UsageError(f"{what} {path}: cannot read it ({exc.strerror or exc})") from None
    if len(data) > max_bytes:
        raise UsageError(f"{what} {path}: more than the {max_bytes} bytes this can hold")
    return data


def read_text(path: Path, what: str, max_bytes: int) -> str:
    """The whole file as UTF-8 text, at most MAX_BYTES."""
    try:
        return read_bytes(path, what, max_bytes).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{what} {path}: not UTF-8 text (byte {exc.start})") from None


def iter_lines(path: Path, what: str, max_bytes: int, max_line_bytes: int) -> Iterator[tuple[int, bytes]]:
    """(line number, line without its newline) for each line, streamed: memory holds one line at a
    time, never more than MAX_LINE_BYTES; the file may be at most MAX_BYTES in all."""
    fd = open_regular(path, what, max_bytes)
    total = 0
    with os.fdopen(fd, "rb") as f:
        number = 0
        while True:
            try:
                line = f.readline(max_line_bytes + 1)
            except OSError as exc:
                if exc.errno == errno.EISDIR:  # pragma: no cover  (fstat said regular)
                    raise UsageError(f"{what} {path}: is a directory") from None
                raise UsageError(f"{what} {path}: cannot read it ({exc.strerror or exc})") from None
            if not line:
                return
            number += 1
            total += len(line)
            if total > max_bytes:
                raise UsageError(f"{what} {path}: more than the {max_bytes} bytes this can hold")
            if len(line) > max_line_bytes and not line.endswith(b"\n"):
                raise UsageError(f"{what} {path}: line {number} is longer than {max_line_bytes} bytes")
            yield number, line.rstrip(b"\r\n")
