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


BLOCK = 256 * 1024  # iter_lines reads this much at a time and splits it into lines itself


def iter_lines(path: Path, what: str, max_bytes: int, max_line_bytes: int) -> Iterator[tuple[int, bytes]]:
    """(line number, line without its newline) for each line, streamed: memory holds a block of the
    file (BLOCK) and one line, never a line of more than MAX_LINE_BYTES; the file may be at most
    MAX_BYTES in all. A line read past either cap is refused as reading line by line refuses it: the
    bytes counted are the line's up to MAX_LINE_BYTES + 1, the file's cap tested first."""
    fd = open_regular(path, what, max_bytes)
    total = 0  # bytes of the lines given so far, as readline(max_line_bytes + 1) would have counted them
    number = 0
    rest = b""  # the start of a line whose newline is in a block not yet read
    with os.fdopen(fd, "rb", buffering=0) as f:
        while True:
            try:
                data = f.read(BLOCK)
            except OSError as exc:
                if exc.errno == errno.EISDIR:  # pragma: no cover  (fstat said regular)
                    raise UsageError(f"{what} {path}: is a directory") from None
                raise UsageError(f"{what} {path}: cannot read it ({exc.strerror or exc})") from None
            if not data:
                if rest:  # the last line, without a newline
                    _check_line(rest, number + 1, total, False, path, what, max_bytes, max_line_bytes)
                    yield number + 1, rest.rstrip(b"\r")
                return
            buf = rest + data if rest else data
            lines = buf.split(b"\n")
            rest = lines.pop()
            if lines:
                size = len(buf) - len(rest)  # the complete lines' bytes, their newlines included
                if total + size > max_bytes or max(map(len, lines)) > max_line_bytes:
                    for line in lines:  # one of them is refused: the lines before it given, as line by line
                        number += 1
                        total = _check_line(line, number, total, True, path, what, max_bytes, max_line_bytes)
                        yield number, line.rstrip(b"\r")
                    continue  # pragma: no cover  (_check_line raised at one of them)
                total += size
                if b"\r" in buf:
                    lines = [line.rstrip(b"\r") for line in lines]
                yield from enumerate(lines, start=number + 1)
                number += len(lines)
            if len(rest) > max_line_bytes:  # a line longer than the cap, its newline not even read
                _check_line(rest, number + 1, total, False, path, what, max_bytes, max_line_bytes)


def _check_line(line: bytes, number: int, total: int, newline: bool, path: Path, what: str, max_bytes: int,
                max_line_bytes: int) -> int:
    """The bytes counted after LINE (line NUMBER, without its newline; NEWLINE: it had one), or the
    UsageError readline(max_line_bytes + 1) line by line would have met at it."""
    too_long = len(line) > max_line_bytes
    total += max_line_bytes + 1 if too_long else len(line) + newline
    if total > max_bytes:
        raise UsageError(f"{what} {path}: more than the {max_bytes} bytes this can hold")
    if too_long:
        raise UsageError(f"{what} {path}: line {number} is longer than {max_line_bytes} bytes")
    return total
