"""The multistream-select cap that p2pdiag puts in front of py-libp2p's reader (p2pdiag/probes/caps.py)."""

from __future__ import annotations

import pytest
import trio

from p2pdiag.probes import caps
from p2pdiag.wire import pb


class Feed:
    """A reader over fixed bytes that counts what was taken from it."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.taken = 0

    async def read(self, n: int | None = None) -> bytes:
        n = len(self.data) - self.taken if n is None else n
        chunk = self.data[self.taken:self.taken + n]
        self.taken += len(chunk)
        return chunk


def read(data: bytes) -> tuple[bytes | BaseException, int]:
    feed = Feed(data)

    async def go() -> bytes:
        return await caps.read_multistream_message(feed)

    try:
        return trio.run(go), feed.taken
    except (pb.MalformedMessage, EOFError) as exc:
        return exc, feed.taken


def test_a_message_within_the_cap_is_read():
    assert read(pb.length_prefixed(b"/noise\n") + b"rest") == (b"/noise", 8)
    longest = b"/" + b"p" * (caps.MULTISTREAM_MAX_BYTES - 2) + b"\n"
    assert read(pb.length_prefixed(longest))[0] == longest[:-1]


@pytest.mark.parametrize("announced", [caps.MULTISTREAM_MAX_BYTES + 1, 64 << 20, (1 << 64) - 1])
def test_an_announced_length_over_the_cap_is_refused_before_its_body(announced):
    prefix = pb.encode_varint(announced)
    result, taken = read(prefix + b"a" * 4096)
    assert isinstance(result, pb.MalformedMessage) and "multistream-select" in str(result)
    assert taken == len(prefix)


@pytest.mark.parametrize(("data", "why"), [
    (b"\xff" * 64, "longer than 10 bytes"),
    (pb.length_prefixed(b"/noise"), "newline"),
    (b"\x80", "ended"),
    (pb.encode_varint(20) + b"/noi", "ended"),
])
def test_broken_messages_are_malformed_or_ended(data, why):
    result, taken = read(data)
    assert isinstance(result, (pb.MalformedMessage, EOFError)) and why in str(result), result
    assert taken <= 20


def test_install_puts_the_cap_in_front_of_py_libp2p():
    from libp2p.protocol_muxer.exceptions import MultiselectCommunicatorError
    from libp2p.protocol_muxer.multiselect_communicator import MultiselectCommunicator

    caps.install()
    caps.install()  # idempotent
    feed = Feed(pb.encode_varint(64 << 20) + b"a" * 65536)

    async def go() -> str:
        return await MultiselectCommunicator(feed).read()

    with pytest.raises(MultiselectCommunicatorError) as caught:
        trio.run(go)
    assert isinstance(caught.value.__cause__, pb.MalformedMessage)
    assert feed.taken < 16
    assert trio.run(MultiselectCommunicator(Feed(pb.length_prefixed(b"/yamux/1.0.0\n"))).read) == "/yamux/1.0.0"


def test_a_yamux_stream_buffer_refuses_to_grow_past_the_cap():
    from libp2p.stream_muxer.yamux.yamux import MAX_WINDOW_SIZE, Yamux

    caps.install()
    assert Yamux.__init__.__module__ == caps.__name__
    buffers = caps._CappedBuffers({})
    buffers[1] = bytearray()  # as Yamux creates a stream's buffer
    buffers[1].extend(b"x" * MAX_WINDOW_SIZE)  # a whole window, unread: allowed
    with pytest.raises(pb.MalformedMessage, match="receive window"):
        buffers[1].extend(b"x" * (caps.YAMUX_STREAM_MAX_BUFFERED_BYTES - MAX_WINDOW_SIZE + 1))
    assert len(buffers[1]) == MAX_WINDOW_SIZE
    del buffers[1][: MAX_WINDOW_SIZE // 2]  # read: room again
    buffers[1].extend(b"y" * 1024)
