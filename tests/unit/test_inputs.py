"""p2pdiag/inputs.py: a file the user names is read bounded, whatever it turns out to be."""

from __future__ import annotations

import os
import threading

import pytest

from p2pdiag.errors import UsageError
from p2pdiag.inputs import iter_lines, read_text


def test_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    done = threading.Event()
    errors: list[str] = []

    def attempt() -> None:
        try:
            read_text(fifo, "--from-file", 1024)
        except UsageError as exc:
            errors.append(str(exc))
        done.set()

    threading.Thread(target=attempt, daemon=True).start()
    assert done.wait(5), "reading a FIFO blocked"
    assert errors == [f"--from-file {fifo}: is a FIFO (named pipe); give a regular file"]


@pytest.mark.parametrize(("path", "said"), [("/dev/zero", "is a device"), ("/", "directory")])
def test_devices_and_directories_are_refused(path, said):
    with pytest.raises(UsageError, match=said):
        read_text(__import__("pathlib").Path(path), "TRACE", 1 << 20)


def test_missing_file_and_bad_text(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        read_text(tmp_path / "absent", "--identity", 10)
    bad = tmp_path / "bad"
    bad.write_bytes(b"ok\xff")
    with pytest.raises(UsageError, match="not UTF-8 text"):
        read_text(bad, "--from-file", 10)


def test_size_cap(tmp_path):
    big = tmp_path / "big"
    big.write_bytes(b"x" * 101)
    with pytest.raises(UsageError, match="101 bytes, more than the 100"):
        read_text(big, "--from-file", 100)
    assert read_text(big, "--from-file", 101) == "x" * 101


def test_lines_are_streamed_with_a_cap_on_each(tmp_path):
    f = tmp_path / "t.jsonl"
    f.write_bytes(b"a\r\nbb\n" + b"c" * 10)
    assert list(iter_lines(f, "TRACE", 100, 10)) == [(1, b"a"), (2, b"bb"), (3, b"c" * 10)]
    f.write_bytes(b"a\n" + b"c" * 11 + b"\n")
    with pytest.raises(UsageError, match="line 2 is longer than 10 bytes"):
        list(iter_lines(f, "TRACE", 100, 10))


@pytest.mark.parametrize("block", [1, 2, 3, 7, 1 << 20])
def test_lines_split_across_blocks_read_as_line_by_line(tmp_path, monkeypatch, block):
    """iter_lines reads BLOCK bytes at a time: lines cut by a block's end, CRs, empty lines and the caps
    read as reading line by line read them, the lines before a refused one given first."""
    import p2pdiag.inputs as inputs

    monkeypatch.setattr(inputs, "BLOCK", block)
    f = tmp_path / "t.jsonl"
    f.write_bytes(b"ab\r\n\ncd\r\r\nefghij\nk")
    assert list(iter_lines(f, "TRACE", 100, 6)) == [(1, b"ab"), (2, b""), (3, b"cd"), (4, b"efghij"), (5, b"k")]
    got = []
    with pytest.raises(UsageError, match="line 4 is longer than 5 bytes"):
        for item in iter_lines(f, "TRACE", 100, 5):
            got.append(item)
    assert got == [(1, b"ab"), (2, b""), (3, b"cd")]
    f.write_bytes(b"a\nbbbbbbbbbbbbbbbbbbbb")  # the long last line has no newline at all
    with pytest.raises(UsageError, match="line 2 is longer than 5 bytes"):
        list(iter_lines(f, "TRACE", 100, 5))
