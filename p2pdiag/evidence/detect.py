"""Which reader a file needs, told from its first lines (never from its name).

A p2pdiag trace starts with its JSON header line; a js-libp2p debug log starts with records
(`<ISO time> libp2p:<namespace> <message>`, the coloured `  <namespace> <message> +Nms`, or a browser
console's `[HH:MM:SS.mmm ][peer.js:123 ]libp2p:<namespace> <message> +Nms`, perhaps with `%c` left in),
perhaps after a few lines of something else (a shell prompt, the app's own output).
"""

from __future__ import annotations

import enum
from pathlib import Path

from p2pdiag.errors import TraceFileError, UsageError
from p2pdiag.evidence import webrtc_internals
from p2pdiag.evidence.jslog import ANSI, COLOUR_RECORD, ISO_RECORD, MAX_BYTES, MAX_LINE_BYTES, browser_record
from p2pdiag.inputs import iter_lines

SNIFF_LINES = 50  # a js log shows a record within its first lines; a trace on its first


class Format(enum.StrEnum):
    TRACE = "trace"
    JS_LOG = "js-log"
    WEBRTC_INTERNALS = "webrtc-internals"


EXPECTED = ("neither a p2pdiag trace (a JSON header line first) nor a js-libp2p debug log "
            "(lines `<ISO time> libp2p:<namespace> <message>`, as DEBUG=libp2p:* prints them, or "
            "`libp2p:<namespace> <message> +Nms` copied from a browser console) "
            "nor a chrome://webrtc-internals dump (JSON with PeerConnections, gzipped or not)")


def _js_record(line: bytes) -> bool:
    text = line.decode("utf-8", errors="replace")
    m = ISO_RECORD.match(text)
    if m is None and text.startswith(" ") and "\x1b[" in text:
        m = COLOUR_RECORD.match(ANSI.sub("", text))
    if m is not None:
        return m.group(1 if m.re is COLOUR_RECORD else 2).startswith("libp2p")
    return browser_record(text) is not None


def detect(path: Path) -> Format:
    """The format of the file at PATH; an empty file or one whose first line is JSON is a trace (its
    reader says what is wrong with it). Anything else that is not a js log is refused here."""
    if webrtc_internals.sniff(path):  # a JSON object with PeerConnections, perhaps gzipped
        return Format.WEBRTC_INTERNALS
    first: bytes | None = None
    try:
        for number, line in iter_lines(path, "FILE", MAX_BYTES, MAX_LINE_BYTES):
            if first is None and line.strip():
                first = line.lstrip()
                if first.startswith((b"{", b"[")):
                    return Format.TRACE
            if _js_record(line):
                return Format.JS_LOG
            if number >= SNIFF_LINES:
                break
    except UsageError as exc:
        raise TraceFileError(str(exc)) from None
    if first is None:
        return Format.TRACE
    raise TraceFileError(f"{path}: {EXPECTED}")
