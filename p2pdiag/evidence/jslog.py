"""A js-libp2p debug log (the `weald`/`debug` logger) read into the facts of evidence/events.py.

Two layouts of Node's stderr and three of a browser's console are read (docs/js-logs.md, LAYOUTS):

- no TTY: `<ISO-8601 time> <namespace> <message>`, one record a line; a record whose message spans
  lines (an object, a stack) continues on lines that do not start with a time;
- colours (`DEBUG_COLORS=1` or a TTY): `  <namespace> <message> +<diff>` in ANSI colours; the diff
  is per namespace, so such a log has no time line;
- Chrome's console copied: `[HH:MM:SS.mmm ][<file>:<line> ]<namespace> <message> +<diff>`, the time
  of day only when "Show timestamps" was on (no date: a day is added where the clock goes back more
  than half a day); or forwarded unformatted, with the `debug` formatter's `%c` and its
  `color: #xxxxxx` / `color: inherit` CSS arguments left in. Only `libp2p…` namespaces count there,
  so a paste of something else is not read as records.

Each record is matched against RULES, a table of (namespace pattern, message pattern, fact). The
table matches what js-libp2p 3.x keeps stable: the namespace's last parts (`circuit-relay:connection:
outbound:<id>`, `libp2p:webrtc`, `libp2p:connection-manager:dial-queue`) and the first words of a
message; a record no row matches is counted, never an error. The file is streamed: memory holds one
line, the facts (at most MAX_FACTS) and a byte count per relayed connection.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from p2pdiag.errors import TraceFileError, UsageError
from p2pdiag.evidence import events as E
from p2pdiag.inputs import MiB, iter_lines

MAX_BYTES = 1024 * MiB  # as a trace: a day of `libp2p:*,*:trace` from a busy node is under this
MAX_LINE_BYTES = MiB
MAX_FACTS = 20_000  # a log that says more than this is a loop; the first ones tell it

ISO_RECORD = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) ([A-Za-z0-9@_./*-]+(?::[A-Za-z0-9@_./*-]+)*)"
                        r"(?: (.*))?$")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
COLOUR_RECORD = re.compile(r" +([A-Za-z0-9@_./*-]+(?::[A-Za-z0-9@_./*-]+)+)(?: (.*?))?(?: \+\d+(?:ms|s|m|h|d))?$")
# Chrome's console copied or forwarded: an optional time of day, an optional source link (`peer.js:15293`,
# `VM12:1`), then a record whose namespace starts with libp2p, perhaps behind the formatter's %c
BROWSER_RECORD = re.compile(r"(?:(\d\d:\d\d:\d\d\.\d{3}) )?(?:[^\s:%]+:\d+ )?(%c)?"
                            r"(libp2p(?::[A-Za-z0-9@_./*-]+)+)(?: %c| |$)(.*)$")
DIFF = re.compile(r" \+\d+(?:ms|s|m|h|d)(?= |$)")
# the unformatted tail: `%c +<diff> color: #xxxxxx color: inherit <arguments…> color: #xxxxxx`
RAW_TAIL = re.compile(r"%c \+\d+(?:ms|s|m|h|d)(?: color: (#[0-9A-Fa-f]{3,8}) color: inherit)?(.*)$")
FORMAT_SPEC = re.compile(r"%[sdifoO]")
LAYOUTS = {
    "iso": "Node stderr without a TTY (ISO-8601 times)",
    "colour": "Node stderr in colours (+Nms diffs, no times)",
    "browser-time": "a browser console copied with Chrome's timestamps (times of day)",
    "browser": "a browser console copied without timestamps",
    "browser-raw": "a browser console forwarded unformatted (%c and CSS left in, no times)",
}
DAY_S = 86_400
_CONN = r"circuit-relay:connection:(?P<dir>inbound|outbound):(?P<conn>[A-Za-z0-9]+)"


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    namespace: re.Pattern[str]  # searched in the namespace
    message: re.Pattern[str]  # matched at the message's start
    fact: Callable[[int, float | None, re.Match[str], re.Match[str]], E.LogFact | None]
    # the message may go on over the next lines: Node's util.inspect wraps a long array ("protocols [")
    continues: bool = False
    major: str = "3.x"  # the js-libp2p major version whose namespaces and wording the rule reads


def _limit(text: str, key: str) -> int | None:
    m = re.search(rf"\b{key}: (\d+)n?\b", text)
    return int(m.group(1)) if m else None


def _js_date(text: str | None) -> str | None:
    """JavaScript's Date.toString() (`Mon Dec 07 2026 14:51:27 GMT+0000 (Coordinated Universal Time)`) as
    ISO 8601 UTC, or None when it is not one."""
    if not text:
        return None
    try:
        when = datetime.strptime(" ".join(text.split()[:6]), "%a %b %d %Y %H:%M:%S GMT%z")
    except ValueError:
        return None
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _protocols(text: str) -> tuple[str, ...]:
    quoted = re.findall(r"'([^']*)'", text)
    if quoted:
        return tuple(quoted)
    # a console forwarded unformatted writes an array's preview without quotes: [/ipfs/id/1.0.0, …]
    listed = re.search(r"\[([^\]]*)\]", text)
    return tuple(p.strip() for p in listed.group(1).split(",") if p.strip()) if listed else ()


def _unformat(message: str) -> str:
    """A record forwarded unformatted (`<format>%c +<diff> color: … color: inherit <arguments> color: …`)
    as the message it formats to: the arguments go into the format's one placeholder, or after it when
    it has several (a rule then still finds them in the text)."""
    m = RAW_TAIL.search(message)
    if m is None:  # a message over several lines: its first one is the head
        return message.replace("%c", "")
    fmt, args = message[:m.start()].replace("%c", ""), m.group(2)
    if m.group(1) and args.endswith(f" color: {m.group(1)}"):
        args = args[:-len(f" color: {m.group(1)}")]
    args = args.strip()
    if len(FORMAT_SPEC.findall(fmt)) == 1:
        return FORMAT_SPEC.sub(lambda _: args, fmt, count=1)
    return f"{fmt} {args}" if args else fmt


def browser_record(text: str) -> tuple[str, str | None, str, str] | None:
    """(layout, time of day or None, namespace, message) of a line copied from a browser console, or None."""
    m = BROWSER_RECORD.match(text)
    if m is None:
        return None
    clock, raw, namespace, message = m.groups()
    if raw:
        return "browser-raw", clock, namespace, _unformat(message)
    return ("browser-time" if clock else "browser"), clock, namespace, DIFF.sub("", message, count=1)


RULES: tuple[Rule, ...] = (
    Rule("dial-requested", re.compile(r"^libp2p:connection-manager$"), re.compile(r"dial (12D3\w+|Qm\w+)$"),
         lambda n, t, ns, m: E.DialRequested(n, t, m.group(1))),
    Rule("dial-succeeded", re.compile(r"^libp2p:connection-manager:dial-queue$"),
         re.compile(r"dial to (\S+) succeeded"),
         lambda n, t, ns, m: E.AddressDialed(n, t, m.group(1), True, None)),
    Rule("dial-failed", re.compile(r"^libp2p:connection-manager:dial-queue:error$"),
         re.compile(r"dial failed to (\S+) - (.*)"),
         lambda n, t, ns, m: E.AddressDialed(n, t, m.group(1), False, m.group(2))),
    Rule("identified", re.compile(r"^libp2p:identify$"), re.compile(r"completed for peer (\S+) and protocols (.*)"),
         lambda n, t, ns, m: E.PeerIdentified(n, t, m.group(1), _protocols(m.group(2))), continues=True),
    Rule("self-observed", re.compile(r"^libp2p:identify:trace$"), re.compile(r"our observed address was (\S+)"),
         lambda n, t, ns, m: E.SelfAddressObserved(n, t, m.group(1))),
    Rule("relayed-opened", re.compile(_CONN + r"$"),
         re.compile(r"(inbound|outbound) relayed connection established to (\S+) with limits (.*)"),
         lambda n, t, ns, m: E.RelayedConnectionOpened(n, t, ns.group("conn"), m.group(2), m.group(1) == "outbound",
                                                     _limit(m.group(3), "duration"), _limit(m.group(3), "data"))),
    Rule("reservation-created", re.compile(r"^libp2p:circuit-relay:transport:reservation-store$"),
         re.compile(r"created reservation on relay peer ([^\s,]+)(?:, expiry date is (.*))?"),
         lambda n, t, ns, m: E.ReservationCreated(n, t, m.group(1), _js_date(m.group(2)))),
    Rule("reservation-refresh", re.compile(r"^libp2p:circuit-relay:transport:reservation-store$"),
         re.compile(r"refresh reservation to relay (\S+)"),
         lambda n, t, ns, m: E.ReservationRefreshing(n, t, m.group(1))),
    Rule("refresh-error", re.compile(r"^libp2p:circuit-relay:transport:reservation-store:error$"),
         re.compile(r"could not refresh reservation to relay (\S+) - (.*)"),
         lambda n, t, ns, m: E.ReservationRefreshFailed(n, t, m.group(1), m.group(2))),
    Rule("reservation-removed", re.compile(r"^libp2p:circuit-relay:transport:reservation-store$"),
         re.compile(r"removing relay reservation with (\S+) from local store"),
         lambda n, t, ns, m: E.ReservationRemoved(n, t, m.group(1))),
    Rule("relay-refused", re.compile(r"^libp2p:circuit-relay:transport:error$"),
         re.compile(r"circuit relay dial to destination (\S+) via relay (\S+) failed - .*\bstatus ([A-Z_]+)"),
         lambda n, t, ns, m: E.RelayRefused(n, t, m.group(2), m.group(1), m.group(3))),
    Rule("relayed-aborted", re.compile(_CONN + r":error$"), re.compile(r"abort with error - (.*)"),
         lambda n, t, ns, m: E.RelayedConnectionAborted(n, t, ns.group("conn"), m.group(1))),
    Rule("relayed-closing", re.compile(_CONN + r"$"), re.compile(r"closing connection to (\S+)"),
         lambda n, t, ns, m: E.ConnectionClosing(n, t, ns.group("conn"), m.group(1))),
    Rule("protocol-refused", re.compile(r":error$"),
         re.compile(r"abort with error - (UnsupportedProtocolError: .*could not negotiate (\S+))"),
         lambda n, t, ns, m: E.ProtocolRefused(n, t, m.group(2), _conn_of(ns.string), m.group(1))),
    Rule("limited-refused", re.compile(r"."), re.compile(r".*(Cannot open protocol stream on limited connection.*)"),
         lambda n, t, ns, m: E.LimitedStreamRefused(n, t, m.group(1), None, _conn_of(ns.string),
                                                    _stream_inbound(ns.string))),
    Rule("webrtc-dial", re.compile(r"^libp2p:webrtc(?::initiate-connection)?(?::trace)?$"),
         re.compile(r"dialing address: (\S+)"), lambda n, t, ns, m: E.WebRTCStep(n, t, "dial", m.group(1))),
    Rule("webrtc-offer", re.compile(r"^libp2p:webrtc(?::initiate-connection)?(?::trace)?$"),
         re.compile(r"initiator send SDP offer"), lambda n, t, ns, m: E.WebRTCStep(n, t, "offer", "")),
    Rule("webrtc-answer", re.compile(r"^libp2p:webrtc(?::initiate-connection)?(?::trace)?$"),
         re.compile(r"initiator received SDP answer"), lambda n, t, ns, m: E.WebRTCStep(n, t, "answer", "")),
    Rule("webrtc-candidate", re.compile(r"^libp2p:webrtc(?::initiate-connection)?(?::trace)?$"),
         re.compile(r"initiator received new ICE candidate .*candidate: '([^']*)'"),
         lambda n, t, ns, m: E.WebRTCStep(n, t, "remote-candidate", m.group(1))),
    Rule("webrtc-connected", re.compile(r"^libp2p:webrtc(?::initiate-connection)?(?::trace)?$"),
         re.compile(r"initiator connected to remote address (\S+)"),
         lambda n, t, ns, m: E.WebRTCStep(n, t, "connected", m.group(1))),
    Rule("webrtc-bad-candidate", re.compile(r"^libp2p:webrtc(?::initiate-connection)?:error$"),
         re.compile(r"initiator bad candidate received .*?candidate: '([^']*)'.* - (.*)"),
         lambda n, t, ns, m: E.WebRTCStep(n, t, "candidate-refused", f"{m.group(1)} - {m.group(2)}")),
    Rule("webrtc-recipient-error", re.compile(r"^libp2p:webrtc(?::signaling-stream-handler)?:error$"),
         re.compile(r"recipient (.*? - .*)"),
         lambda n, t, ns, m: E.WebRTCStep(n, t, "recipient-error", m.group(1))),
    Rule("webrtc-signaling-error", re.compile(r"^libp2p:webrtc(?::initiate-connection)?:error$"),
         re.compile(r"outgoing signaling error - (.*)"),
         lambda n, t, ns, m: E.WebRTCFailed(n, t, f"signaling: {m.group(1)}")),
    Rule("webrtc-upgraded", re.compile(r"^libp2p:webrtc:connection:(?:inbound|outbound):(\w+)$"),
         re.compile(r"successfully upgraded connection"), lambda n, t, ns, m: E.WebRTCUpgraded(n, t, ns.group(1))),
    Rule("webrtc-failed", re.compile(r"^libp2p:webrtc"),
         re.compile(r".*?((?:RTCPeerConnection |ICE )?(?:ice )?connection state (?:became|changed to) \"?failed\"?)",
                    re.IGNORECASE),
         lambda n, t, ns, m: E.WebRTCFailed(n, t, m.group(1))),
)
# js-libp2p 2.x (libp2p 2.8.12, @libp2p/webrtc 5.2.20), read from the logs tests/record/jslog2.py
# recorded: an error follows its message after a space, not " - "; identify says "identify completed";
# a relayed connection is announced by the transport, with its address and no id or Limit, and every
# connection logs under `libp2p:connection:<direction>:<id>`, so a 2.x relayed connection is known by
# its address. Tried after RULES, so a line both read gives the 3.x fact.
_CONN_2X = r"^libp2p:connection:(?:inbound|outbound):(?P<conn>[A-Za-z0-9]+)$"


def _peer_of(address: str) -> str:
    return address.rsplit("/p2p/", 1)[-1]


RULES_2X: tuple[Rule, ...] = (
    Rule("identified", re.compile(r"^libp2p:identify$"),
         re.compile(r"identify completed for peer (\S+) and protocols (.*)"),
         lambda n, t, ns, m: E.PeerIdentified(n, t, m.group(1), _protocols(m.group(2))), continues=True,
         major="2.x"),
    Rule("dial-failed", re.compile(r"^libp2p:connection-manager:dial-queue:error$"),
         re.compile(r"dial failed to (\S+) (.*)"),
         lambda n, t, ns, m: E.AddressDialed(n, t, m.group(1), False, m.group(2)), major="2.x"),
    Rule("relayed-opened", re.compile(r"^libp2p:circuit-relay:transport$"),
         re.compile(r"new outbound relayed connection (\S+/p2p-circuit/p2p/\S+)"),
         lambda n, t, ns, m: E.RelayedConnectionOpened(n, t, m.group(1), _peer_of(m.group(1)), True, None, None),
         major="2.x"),
    Rule("relay-refused", re.compile(r"^libp2p:circuit-relay:transport:error$"),
         re.compile(r"circuit relay dial to destination (\S+) via relay (\S+) failed .*\bstatus ([A-Z_]+)"),
         lambda n, t, ns, m: E.RelayRefused(n, t, m.group(2), m.group(1), m.group(3)), major="2.x"),
    Rule("relayed-closing", re.compile(_CONN_2X),
         re.compile(r"closing connection to (\S+/p2p-circuit/p2p/\S+)"),
         lambda n, t, ns, m: E.ConnectionClosing(n, t, m.group(1), m.group(1)), major="2.x"),
    Rule("webrtc-signaling-error", re.compile(r"^libp2p:webrtc:error$"), re.compile(r"outgoing signaling error (.*)"),
         lambda n, t, ns, m: E.WebRTCFailed(n, t, f"signaling: {m.group(1)}"), major="2.x"),
    # no id: the line stands for the connection
    Rule("webrtc-upgraded", re.compile(r"^libp2p:webrtc:maconn$"),
         re.compile(r"successfully upgraded outbound connection"),
         lambda n, t, ns, m: E.WebRTCUpgraded(n, t, f"webrtc@{n}"), major="2.x"),
    # 5.2.20 takes a signaling stream that merely ended for a connected peer connection: its
    # "upgraded" connection then opens no stream and is closed with this error
    Rule("webrtc-closed-on-error", re.compile(r"^libp2p:webrtc:maconn:error$"),
         re.compile(r"closing connection due to error (.*)"),
         lambda n, t, ns, m: E.WebRTCFailed(n, t, f"connection closed: {m.group(1)}"), major="2.x"),
)
# both majors: the node's stop begins with its transports closing their listeners
STOPPING = Rule("node-stopping", re.compile(r"^libp2p:transports$"), re.compile(r"closing listeners for "),
                lambda n, t, ns, m: E.NodeStopping(n, t))

# namespaces js-libp2p 2.x and earlier used, renamed in 3.x
V2_NAMESPACES = ("libp2p:webrtc:initiate-connection", "libp2p:webrtc:signaling-stream-handler")
# trace level: bytes the relayed connection writes into its circuit (aggregated, not kept as facts)
CIRCUIT_WRITE = (re.compile(_CONN + r":trace$"), re.compile(r"append (\d+) bytes to write buffer"))


NAMESPACE_MEMO = 10_000


def _rules_for(namespace: str) -> tuple[str | None, tuple[tuple[Rule, re.Match[str]], ...]]:
    """(the relayed connection whose circuit writes this namespace logs, or None; the rules whose
    namespace pattern matches it, with the match)."""
    w = CIRCUIT_WRITE[0].search(namespace)
    rules = tuple((rule, m) for rule in (*RULES, *RULES_2X, STOPPING)
                  if (m := rule.namespace.search(namespace)) is not None)
    return (w.group("conn") if w else None), rules


# a stream's namespace: `…:<muxer>:<inbound|outbound>:<n>`; the protocol it negotiated is logged on it
STREAM = re.compile(r"(.*:(?:yamux|mplex|muxer):(inbound|outbound):\d+)(?::error|:trace)?$")
NEGOTIATED = re.compile(r"(?:pre-)?negotiated protocol (\S+)")


def _stream_inbound(namespace: str) -> bool | None:
    m = STREAM.match(namespace)
    return None if m is None else m.group(2) == "inbound"


def _conn_of(namespace: str) -> str | None:
    m = re.search(_CONN, namespace)
    return m.group("conn") if m else None


@dataclass
class JsLog:
    """What a js-libp2p log said, and how much of it was read."""

    name: str
    layout: str = "iso"  # a key of LAYOUTS: the form of the log's last record
    lines: int = 0
    records: int = 0  # lines that start a log record (a time or a namespace first)
    continuation: int = 0  # lines that continue a record (an object or a stack over several lines)
    foreign: int = 0  # lines before the first record, or not of this logger at all
    recognised: int = 0  # records a rule turned into a fact
    trace_records: int = 0  # records of a `:trace` namespace
    first_time: str | None = None
    last_time: str | None = None
    libp2p_2x: bool = False  # namespaces of js-libp2p 2.x and earlier (libp2p:webrtc:initiate-connection …)
    facts: list[E.LogFact] = field(default_factory=list)
    facts_dropped: int = 0
    circuit_bytes_written: dict[str, int] = field(default_factory=dict)

    @property
    def unrecognised(self) -> int:
        return self.records - self.recognised

    span_s: float | None = None  # from the first record's time to the last one's

    @property
    def has_trace_level(self) -> bool:
        return self.trace_records > 0

    @property
    def has_times(self) -> bool:
        return self.first_time is not None

    @property
    def times_of_day_only(self) -> bool:
        """Chrome's console timestamps: a time of day, no date, in the browser's unknown zone."""
        return self.layout == "browser-time" and self.has_times


CLOCK_EPOCH = datetime(2000, 1, 1)  # times of day are placed on a day of their own, only differences count


def _clock(text: str, last: datetime | None) -> datetime | None:
    """A time of day `HH:MM:SS.mmm` on the day of LAST, or the next day when it lies more than half a day
    before LAST (the log went past midnight); None when it only looks like one (25:61:00.000)."""
    hours, minutes, rest = text.split(":")
    seconds = int(hours) * 3600 + int(minutes) * 60 + float(rest)
    if int(hours) > 23 or int(minutes) > 59 or float(rest) >= 60:
        return None
    day = CLOCK_EPOCH if last is None else datetime(last.year, last.month, last.day)
    when = day + timedelta(seconds=seconds)
    if last is not None and (last - when).total_seconds() > DAY_S / 2:
        when += timedelta(days=1)
    return when


def _time(iso: str) -> datetime | None:
    """The time of a record, or None when it only looks like one (month 13, hour 25)."""
    try:
        return datetime.fromisoformat(iso)  # Python 3.11 reads the Z
    except ValueError:
        return None


@dataclass
class _Pending:
    """A record whose message goes on over continuation lines, held until the next record."""

    rule: Rule
    number: int
    t_s: float | None
    namespace: re.Match[str]
    parts: list[str]


MAX_PENDING_LINES = 500  # a wrapped protocol list of a busy node is a few dozen lines


def read(lines: Iterable[tuple[int, bytes]], name: str) -> JsLog:
    log = JsLog(name)
    t0: datetime | None = None
    last: datetime | None = None
    pending: _Pending | None = None
    # a log has few distinct namespaces (one per connection and stream): which rules can match one is
    # worked out once, and the memo is bounded for a log of very many connections
    by_namespace: dict[str, tuple[str | None, tuple[tuple[Rule, re.Match[str]], ...]]] = {}

    # the protocol each stream negotiated, for a refusal logged on that stream (bounded like the memo)
    negotiated: dict[str, str] = {}

    def add(rule: Rule, number: int, t_s: float | None, ns: re.Match[str], mm: re.Match[str]) -> None:
        fact = rule.fact(number, t_s, ns, mm)
        if isinstance(fact, E.LimitedStreamRefused) and (stream := STREAM.match(ns.string)) is not None:
            fact = dataclasses.replace(fact, protocol=negotiated.get(stream.group(1)))
        if fact is not None:
            log.recognised += 1
            log.libp2p_2x = log.libp2p_2x or rule.major == "2.x"
            if len(log.facts) < MAX_FACTS:
                log.facts.append(fact)
            else:
                log.facts_dropped += 1

    def finish(p: _Pending) -> None:
        mm = p.rule.message.match(" ".join(p.parts))
        if mm is not None:
            add(p.rule, p.number, p.t_s, p.namespace, mm)

    for number, raw in lines:
        log.lines += 1
        text = raw.decode("utf-8", errors="replace")
        m = ISO_RECORD.match(text)
        stamp: str | None = None
        when: datetime | None = None
        if m is not None and (when := (last if m.group(1) == log.last_time else _time(m.group(1)))) is not None:
            stamp, namespace, message = m.group(1), m.group(2), m.group(3) or ""
        elif text.startswith(" ") and "\x1b[" in text and (c := COLOUR_RECORD.match(ANSI.sub("", text))):
            log.layout = "colour"
            namespace, message = c.group(1), c.group(2) or ""
        elif (br := browser_record(text)) is not None:
            log.layout, clock, namespace, message = br
            if clock is not None:
                when = last if clock == log.last_time else _clock(clock, last)
                stamp = clock if when is not None else None
        else:
            if log.records:
                log.continuation += 1
                if pending is not None and len(pending.parts) < MAX_PENDING_LINES:
                    pending.parts.append(text.strip())
            else:
                log.foreign += 1
            continue
        if pending is not None:
            finish(pending)
            pending = None
        log.records += 1
        if stamp is not None:
            if t0 is None:
                log.first_time, t0 = stamp, when
            log.last_time, last = stamp, when
        if namespace.endswith(":trace"):
            log.trace_records += 1
        if namespace.startswith(V2_NAMESPACES):  # not `libp2p:circuit-relay:transport`: a 3.x listener logs there
            log.libp2p_2x = True
        known = by_namespace.get(namespace)
        if known is None:
            if len(by_namespace) > NAMESPACE_MEMO:
                by_namespace.clear()
            known = by_namespace[namespace] = _rules_for(namespace)
        write_conn, rules = known
        if message.startswith(("negotiated protocol", "pre-negotiated protocol")) and (
                (stream := STREAM.match(namespace)) is not None and (proto := NEGOTIATED.match(message))):
            if len(negotiated) > NAMESPACE_MEMO:
                negotiated.clear()
            negotiated[stream.group(1)] = proto.group(1)
        if write_conn is not None and (b := CIRCUIT_WRITE[1].match(message)):
            log.circuit_bytes_written[write_conn] = log.circuit_bytes_written.get(write_conn, 0) + int(b.group(1))
            log.recognised += 1
            continue
        for rule, ns in rules:
            mm = rule.message.match(message)
            if mm is None:
                continue
            t_s = (when - t0).total_seconds() if when is not None and t0 is not None else None
            if rule.continues and message.count("[") > message.count("]"):
                pending = _Pending(rule, number, t_s, ns, [message])
            else:
                add(rule, number, t_s, ns, mm)
            break
    if pending is not None:
        finish(pending)
    if t0 is not None and last is not None:
        log.span_s = (last - t0).total_seconds()
    return log


def load(path: str | Path, rewrite: Callable[[str], str] | None = None) -> JsLog:
    """The log at PATH, read. REWRITE (--redact's Redactor.text) is applied to each line before it is
    read, so the facts, and the verdict, carry only what it left."""
    p = Path(path)
    lines: Iterable[tuple[int, bytes]] = iter_lines(p, "LOG", MAX_BYTES, MAX_LINE_BYTES)
    if rewrite is not None:
        lines = ((n, rewrite(raw.decode("utf-8", errors="replace")).encode()) for n, raw in lines)
    try:
        log = read(lines, str(p))
    except UsageError as exc:
        raise TraceFileError(str(exc)) from None
    if log.records == 0:
        raise TraceFileError(f"{p}: no js-libp2p debug log records (lines `<ISO time> libp2p:<namespace> <message>`, "
                             "or `libp2p:<namespace> <message> +Nms` from a browser console)")
    return log
