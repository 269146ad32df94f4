"""How much a peer can make p2pdiag read: the caps in front of py-libp2p's own readers.

py-libp2p 0.8.1 reads a multistream-select message as "a uvarint length, then that many bytes"
with no maximum (`libp2p.utils.varint.read_delim`): a relay that announces 64 MiB made p2pdiag
buffer 64 MiB, and random bytes read as a length made it allocate up to gigabytes. Every
multistream-select exchange p2pdiag's host takes part in (security and muxer negotiation on a new
connection, each stream it opens or accepts) goes through `MultiselectCommunicator.read`, so that
one method is replaced, once, by `install()` (called where the host is made, `net.make_host`).
`install()` also caps what one yamux stream may hold unread (py-libp2p does not enforce its own
receive window).

The replacement reads the length byte by byte as the library does, refuses a message over
MULTISTREAM_MAX_BYTES before reading its body, and raises the library's own
`MultiselectCommunicatorError` with a `pb.MalformedMessage` as its cause: the
library's negotiation fails as it would for a garbled message, and the probe that waited for it
records a MALFORMED failure, never an exception of its own.

The other caps p2pdiag applies itself, where it reads (`net.read_delimited` with the bound of each
message kind) are listed in docs/bad-input.md, with the ones py-libp2p already has.
"""

from __future__ import annotations

from typing import Any

from p2pdiag.probes import net
from p2pdiag.wire import pb

# A multistream-select message is one protocol id and "\n" (or "na", "ls"). js-libp2p refuses
# protocol ids over 1024 bytes (MAX_PROTOCOL_LENGTH, after go-multistream); p2pdiag never lists
# protocols ("ls"), so no answer it waits for is longer.
MULTISTREAM_MAX_BYTES = 1024

# What one yamux stream may hold unread. py-libp2p 0.8.1 advertises a receive window that auto-tunes
# up to 16 MiB (`MAX_WINDOW_SIZE`) but only logs a peer that sends past it, and keeps buffering: a
# relay writing DATA frames past the window grew p2pdiag to 280 MB in 5 s. A peer that honours the
# window never has more unread than that window plus the 256 KiB initial one a window update may
# still be catching up with; beyond, as go-yamux does, the stream is refused (it reads as ended).
YAMUX_STREAM_MAX_BUFFERED_BYTES = 16 * 1024 * 1024 + 256 * 1024


class _CappedBuffer(bytearray):
    """A stream's receive buffer that refuses to grow past YAMUX_STREAM_MAX_BUFFERED_BYTES."""

    def extend(self, data: Any) -> None:
        if len(self) + len(data) > YAMUX_STREAM_MAX_BUFFERED_BYTES:
            raise pb.MalformedMessage(f"the peer sent past the yamux receive window: {len(self) + len(data)} "
                                      f"bytes unread on one stream, more than {YAMUX_STREAM_MAX_BUFFERED_BYTES}")
        super().extend(data)


class _CappedBuffers(dict):
    """Yamux.stream_buffers, whose every buffer is a _CappedBuffer."""

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value if isinstance(value, _CappedBuffer) else _CappedBuffer(value))


async def read_multistream_message(reader: Any, max_bytes: int = MULTISTREAM_MAX_BYTES) -> bytes:
    """One uvarint-length-prefixed multistream-select message without its "\\n"; pb.MalformedMessage
    before anything over `max_bytes` is read, EOFError if the stream ends first."""
    try:
        body = await net.read_delimited(reader, max_bytes)
    except pb.MalformedMessage as exc:
        raise pb.MalformedMessage(f"multistream-select: {exc}") from None
    if not body.endswith(b"\n"):
        raise pb.MalformedMessage(f"multistream-select message not ended by a newline: {body[:40]!r}")
    return body[:-1]


_installed = False


def install() -> None:
    """Put the multistream-select cap in front of py-libp2p's reader, and the buffer cap under its
    yamux streams (idempotent).

    A yamux DATA frame that would overrun the cap raises inside py-libp2p's frame loop, which marks
    that stream ended for reading and drops the frame (`Yamux.handle_incoming`, "Error reading data
    for stream"): the reader sees the stream end, and nothing past the cap is kept."""
    global _installed  # noqa: PLW0603  (the patches go into py-libp2p's classes once per process)
    if _installed:
        return
    from libp2p.protocol_muxer.exceptions import MultiselectCommunicatorError
    from libp2p.protocol_muxer.multiselect_communicator import MultiselectCommunicator
    from libp2p.stream_muxer.yamux.yamux import Yamux

    async def read(self: Any) -> str:
        try:
            data = await read_multistream_message(self.read_writer)
        except (pb.MalformedMessage, EOFError) as exc:
            raise MultiselectCommunicatorError(f"fail to read from multiselect communicator: {exc}") from exc
        except Exception as exc:  # the transport's own errors, as the library's reader wraps them
            from libp2p.io.exceptions import IOException

            if isinstance(exc, IOException):
                raise MultiselectCommunicatorError("fail to read from multiselect communicator") from exc
            raise
        return data.decode("utf-8", "replace")

    MultiselectCommunicator.read = read  # type: ignore[method-assign]

    yamux_init = Yamux.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        yamux_init(self, *args, **kwargs)
        self.stream_buffers = _CappedBuffers(self.stream_buffers)

    Yamux.__init__ = init  # type: ignore[method-assign]
    _installed = True
