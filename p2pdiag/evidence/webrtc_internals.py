"""A chrome://webrtc-internals dump (JSON, gzipped or not) read into typed facts per peer connection.

The dump is what the page's "Create a WebRTC-Internals dump" → Download writes (docs/webrtc-internals.md):

    {"getUserMedia": [...], "UserAgent": "...",
     "PeerConnections": {"<renderer>-<lid>": {"pid", "url", "rtcConfiguration", "constraints",
         "updateLog": [{"timestamp" (ms since the epoch; older Chrome: "time"), "type", "value"}],
         "stats": {"<stat id>-<field>": {"statsType", "startTime", "endTime", "values": "<JSON array>"}}}}}

What is read from each peer connection: the ICE servers configured (their URLs only: a TURN credential
is never kept), every local and remote candidate (from the log's `onicecandidate` / `addIceCandidate`
and from the stats, which add peer-reflexive ones and the STUN/TURN URL a candidate came from), every
candidate pair with its state and STUN check counters, the selected pair and the DTLS state (stats),
the ICE, connection, gathering and signaling state changes, and `icecandidateerror` with its
STUN/TURN error code and URL. Everything else in the dump is counted, not kept.

The file is read whole but capped: at most MAX_FILE_BYTES on disk and MAX_JSON_BYTES once gunzipped
(a gzip bomb is refused as it inflates, not after), and at most MAX_PEER_CONNECTIONS, MAX_UPDATES and
MAX_CANDIDATES are kept. Standard library only, like the rest of evidence/.
"""

from __future__ import annotations

import json
import os
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from p2pdiag.errors import TraceFileError, UsageError
from p2pdiag.inputs import MiB, open_regular

MAX_FILE_BYTES = 128 * MiB  # Chrome keeps at most 1000 samples a stats series: a long session's dump is tens of MiB
MAX_JSON_BYTES = 128 * MiB  # once gunzipped
SNIFF_BYTES = 64 * 1024
ANY_SIZE = 1 << 62
MAX_PEER_CONNECTIONS = 200  # libp2p opens one per upgrade attempt; more is a loop, the first ones tell it
MAX_UPDATES = 20_000  # per peer connection
MAX_CANDIDATES = 500  # per peer connection, local and remote
CHUNK = 256 * 1024

GZIP_MAGIC = b"\x1f\x8b"
_SNIFF = re.compile(rb'^\s*\{.*?"(?:PeerConnections|getUserMedia)"\s*:', re.DOTALL)
# an SDP candidate line (RFC 8839 section 5.1), in an updateLog value (JSON or older Chrome's text)
_CANDIDATE = re.compile(r"candidate:\S+ \d+ (?P<protocol>udp|tcp|UDP|TCP) \d+ (?P<address>[^\s\"\\]+) (?P<port>\d+) "
                        r"typ (?P<type>host|srflx|prflx|relay)(?: raddr (?P<raddr>[^\s\"\\]+) rport (?P<rport>\d+))?")
_URL = re.compile(r'"url"\s*:\s*"([^"]{1,256})"')
_ERROR_FIELD = re.compile(r"(url|address|port|host_candidate|error_text|error_code|errorCode|errorText)"
                          r"[\"']?\s*[:=]\s*[\"']?([^\n\"',}]*)")

STATE_TYPES = {  # updateLog type (lower case, without "on") -> what changed
    "iceconnectionstatechange": "ice",
    "connectionstatechange": "connection",
    "icegatheringstatechange": "gathering",
    "signalingstatechange": "signaling",
}
# the stats fields read, per statsType (the standard getStats ones; others are counted only)
WANTED = {
    "candidate-pair": {"localCandidateId", "remoteCandidateId", "state", "nominated", "requestsSent",
                       "responsesReceived", "requestsReceived", "responsesSent", "bytesSent", "bytesReceived"},
    "local-candidate": {"address", "ip", "port", "protocol", "candidateType", "relatedAddress", "relatedPort", "url",
                        "relayProtocol"},
    "remote-candidate": {"address", "ip", "port", "protocol", "candidateType", "relatedAddress", "relatedPort"},
    "transport": {"selectedCandidatePairId", "dtlsState", "iceState", "iceRole"},
}
LEGACY_STATS = ("googCandidatePair", "localcandidate", "remotecandidate", "googComponent")


@dataclass(frozen=True, slots=True)
class IceServer:
    """One configured ICE server: its URLs only (a TURN username or credential is never kept)."""

    urls: tuple[str, ...]
    has_credential: bool


@dataclass(frozen=True, slots=True)
class Candidate:
    local: bool
    candidate_type: str  # host, srflx, prflx, relay
    address: str
    port: int | None
    protocol: str  # udp, tcp
    related_address: str | None = None
    related_port: int | None = None
    url: str | None = None  # the STUN/TURN server a local srflx/relay candidate came from (stats only)
    relay_protocol: str | None = None  # how a relay candidate reaches its TURN server (stats only)
    stat_id: str | None = None  # the stats id, when the stats list it

    @property
    def endpoint(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port} {self.protocol} {self.candidate_type}"


@dataclass(frozen=True, slots=True)
class Pair:
    stat_id: str
    local_id: str | None
    remote_id: str | None
    state: str | None  # the last sampled one: frozen, waiting, in-progress, succeeded, failed
    states: tuple[str, ...]  # every state sampled, in order, repeats dropped
    nominated: bool
    requests_sent: int
    responses_received: int
    requests_received: int
    responses_sent: int
    bytes_sent: int
    bytes_received: int


@dataclass(frozen=True, slots=True)
class StateChange:
    t_s: float | None  # seconds since the dump's first timestamp
    kind: str  # ice, connection, gathering, signaling
    state: str


@dataclass(frozen=True, slots=True)
class CandidateError:
    """`icecandidateerror`: a STUN or TURN server that refused or did not answer (701: no answer)."""

    t_s: float | None
    url: str
    error_code: int | None
    error_text: str
    address: str | None


@dataclass
class PeerConnection:
    key: str  # the dump's "<renderer>-<lid>"
    url: str  # the page that made it
    ice_servers: tuple[IceServer, ...] = ()
    ice_transport_policy: str | None = None
    config_read: bool = False  # rtcConfiguration was present and parsed
    states: list[StateChange] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)
    candidates_dropped: int = 0
    pairs: list[Pair] = field(default_factory=list)
    selected_pair_id: str | None = None
    dtls_states: tuple[str, ...] = ()  # sampled, repeats dropped
    ice_role: str | None = None
    errors: list[CandidateError] = field(default_factory=list)
    offer_sent: bool = False  # this side made the offer: the WebRTC initiator (libp2p's dialer)
    remote_description: bool = False
    remote_sdp_candidates: int = 0  # a=candidate lines in the remote description
    data_channels: int = 0  # opened by either side (createDataChannel, ondatachannel)
    updates: int = 0
    updates_dropped: int = 0
    first_t_s: float | None = None
    last_t_s: float | None = None
    stats_samples: int = 0  # the most samples any stats series of it holds
    legacy_stats: bool = False  # only the old goog* stats, not read

    def states_of(self, kind: str) -> list[str]:
        return [s.state for s in self.states if s.kind == kind]

    @property
    def local(self) -> list[Candidate]:
        return [c for c in self.candidates if c.local]

    @property
    def remote(self) -> list[Candidate]:
        return [c for c in self.candidates if not c.local]

    def candidate(self, stat_id: str | None) -> Candidate | None:
        return next((c for c in self.candidates if stat_id is not None and c.stat_id == stat_id), None)

    @property
    def selected(self) -> Pair | None:
        return next((p for p in self.pairs if p.stat_id == self.selected_pair_id), None)


@dataclass
class Dump:
    name: str
    compressed: bool
    file_bytes: int
    json_bytes: int
    user_agent: str | None
    browser: str | None  # "Chromium 156.0.8078.129", from UserAgentData or UserAgent
    peer_connections: list[PeerConnection]
    peer_connections_dropped: int
    get_user_media: int
    first_time: str | None  # ISO, UTC, of the first timestamp read
    span_s: float | None


def safe_url(url: str) -> str:
    """A STUN/TURN URL without anything that could be a credential (`turn:user:pass@host` is not RFC 7065,
    but people write it)."""
    scheme, sep, rest = url.partition(":")
    return (scheme + sep + rest.rpartition("@")[2])[:256]


def _refuse(path: Path, why: str) -> TraceFileError:
    return TraceFileError(f"{path}: {why}")


def _inflate(chunks, path: Path, limit: int) -> bytes:
    """Gunzip CHUNKS, refusing output past LIMIT as it grows (a gzip bomb stops here, not after)."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = bytearray()
    try:
        for chunk in chunks:
            data = chunk
            while data:
                out += d.decompress(data, limit + 1 - len(out))
                if len(out) > limit:
                    raise _refuse(path, f"more than {limit} bytes once gunzipped; not a webrtc-internals dump "
                                        "this can read")
                data = d.unconsumed_tail
            if d.eof:
                break
    except zlib.error as exc:
        raise _refuse(path, f"not valid gzip ({exc})") from None
    if not d.eof:
        raise _refuse(path, "the gzip stream is cut short (truncated download?)")
    return bytes(out)


def _chunks(fd: int, limit: int):
    total = 0
    while True:
        chunk = os.read(fd, CHUNK)
        if not chunk:
            return
        total += len(chunk)
        if total > limit:
            raise UsageError(f"more than the {limit} bytes this can hold")
        yield chunk


def sniff(path: Path) -> bool:
    """Whether PATH looks like a webrtc-internals dump: a JSON object (gzipped or not) with
    `PeerConnections` or `getUserMedia` among its first keys. Reads at most SNIFF_BYTES (inflated too);
    the file's size is not judged here (a trace may be larger than a dump), load() does."""
    try:
        fd = open_regular(path, "FILE", ANY_SIZE)
    except UsageError as exc:
        raise TraceFileError(str(exc)) from None
    with os.fdopen(fd, "rb") as f:
        head = f.read(SNIFF_BYTES)
    if head.startswith(GZIP_MAGIC):
        try:
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, SNIFF_BYTES)
        except zlib.error:
            return False
    return _SNIFF.match(head) is not None


def _load_json(path: Path) -> tuple[object, bool, int, int]:
    try:
        fd = open_regular(path, "FILE", MAX_FILE_BYTES)
    except UsageError as exc:
        raise TraceFileError(str(exc)) from None
    try:
        first = os.read(fd, 2)
        rest = _chunks(fd, MAX_FILE_BYTES - len(first))
        if first == GZIP_MAGIC:
            size = [len(first)]

            def counted():
                yield first
                for c in rest:
                    size[0] += len(c)
                    yield c

            raw = _inflate(counted(), path, MAX_JSON_BYTES)
            compressed, file_bytes = True, size[0]
        else:
            raw = first + b"".join(rest)
            compressed, file_bytes = False, len(raw)
            if len(raw) > MAX_JSON_BYTES:
                raise _refuse(path, f"more than {MAX_JSON_BYTES} bytes")
    except (UsageError, OSError) as exc:
        raise _refuse(path, f"cannot read it ({exc})") from None
    finally:
        os.close(fd)
    try:
        doc = json.loads(raw)
    except RecursionError:
        raise _refuse(path, "JSON nested too deep; not a webrtc-internals dump") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, and ints past Python's digit limit
        raise _refuse(path, f"not valid JSON ({str(exc)[:120]}); a webrtc-internals dump cut short?") from None
    return doc, compressed, file_bytes, len(raw)


def _time(entry: dict) -> float | None:
    """An updateLog entry's time in ms since the epoch: `timestamp` (Chrome 100 and later), or `time`."""
    t = entry.get("timestamp")
    if isinstance(t, (int, float, str)) and not isinstance(t, bool):
        try:
            v = float(t)
        except ValueError:
            v = None
        if v is not None and 0 < v < 1e14:
            return v
    t = entry.get("time")
    if isinstance(t, str) and len(t) < 64:
        for parse in (datetime.fromisoformat, lambda s: datetime.strptime(s, "%m/%d/%Y, %I:%M:%S %p")):
            try:
                return parse(t.strip()).timestamp() * 1000
            except ValueError:
                continue
    return None


def _int(v: object) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v == v and abs(v) < 1e18:
        return int(v)
    if isinstance(v, str) and v.isdigit() and len(v) < 12:
        return int(v)
    return None


def _str(v: object, limit: int = 512) -> str | None:
    return v[:limit] if isinstance(v, str) else None


def _unquote(value: object) -> str:
    text = value if isinstance(value, str) else ""
    return text.strip().strip('"')[:64]


def _ice_servers(config: object) -> tuple[tuple[IceServer, ...], str | None, bool]:
    """The ICE servers and transport policy of rtcConfiguration: a JSON string (Chrome 100 and later), or
    older Chrome's `{ iceServers: [turn:…, stun:…], iceTransportPolicy: all, … }` text. URLs only."""
    if not isinstance(config, str) or len(config) > 1_000_000:
        return (), None, False
    try:
        doc = json.loads(config)
    except (ValueError, RecursionError):
        urls = re.findall(r"((?:stuns?|turns?):[^\s,\]\}]+)", config)
        policy = re.search(r"iceTransportPolicy:\s*(\w+)", config)
        return tuple(IceServer((safe_url(u),), False) for u in urls[:50]), policy.group(1) if policy else None, True
    if not isinstance(doc, dict):
        return (), None, False
    servers = []
    for s in doc.get("iceServers") or []:
        if not isinstance(s, dict):
            continue
        urls = s.get("urls", s.get("url"))
        urls = [urls] if isinstance(urls, str) else urls if isinstance(urls, list) else []
        servers.append(IceServer(tuple(safe_url(u) for u in urls[:20] if isinstance(u, str)),
                                 bool(s.get("credential") or s.get("username"))))
        if len(servers) >= 50:
            break
    policy = doc.get("iceTransportPolicy")
    return tuple(servers), policy if isinstance(policy, str) else None, True


def _candidate_from(text: str, local: bool) -> Candidate | None:
    m = _CANDIDATE.search(text)
    if m is None:
        return None
    url = _URL.search(text)  # Chrome adds the STUN/TURN server a local candidate came from
    return Candidate(local, m.group("type"), m.group("address")[:128], int(m.group("port")),
                     m.group("protocol").lower(), m.group("raddr"), int(m.group("rport")) if m.group("rport") else None,
                     safe_url(url.group(1)) if url else None)


def _candidate_error(value: object, t_s: float | None) -> CandidateError:
    if isinstance(value, str):
        try:
            doc = json.loads(value)
        except (ValueError, RecursionError):
            doc = None
        fields = {k: str(v) for k, v in doc.items()} if isinstance(doc, dict) else \
            {m.group(1): m.group(2).strip() for m in _ERROR_FIELD.finditer(value[:4096])}
    else:
        fields = {k: str(v) for k, v in value.items()} if isinstance(value, dict) else {}
    code = fields.get("error_code", fields.get("errorCode", ""))
    return CandidateError(t_s, safe_url(fields.get("url", "")), int(code) if code.isdigit() and len(code) < 6 else None,
                          fields.get("error_text", fields.get("errorText", ""))[:256],
                          fields.get("address") or None)


def _series(entry: object) -> list | None:
    if not isinstance(entry, dict) or not isinstance(entry.get("values"), str):
        return None
    try:
        values = json.loads(entry["values"])
    except (ValueError, RecursionError):
        return None
    return values if isinstance(values, list) else None


def _read_stats(pc: PeerConnection, stats: object) -> None:
    if not isinstance(stats, dict):
        return
    by_id: dict[str, tuple[str, dict[str, list]]] = {}
    for key, entry in stats.items():
        if not isinstance(key, str) or not isinstance(entry, dict):
            continue
        kind = entry.get("statsType")
        if not isinstance(kind, str):
            continue
        if kind in LEGACY_STATS:
            pc.legacy_stats = True
        stat_id, _, name = key.rpartition("-")
        if kind not in WANTED or name not in WANTED[kind] or not stat_id:
            if name == "timestamp" and (values := _series(entry)) is not None:
                pc.stats_samples = max(pc.stats_samples, len(values))
            continue
        values = _series(entry)
        if values:
            by_id.setdefault(stat_id, (kind, {}))[1][name] = values
    for stat_id, (kind, f) in by_id.items():
        last = {k: v[-1] for k, v in f.items()}
        if kind in ("local-candidate", "remote-candidate"):
            address = _str(last.get("address")) or _str(last.get("ip"))
            ctype = _str(last.get("candidateType"))
            if address is None or ctype is None:
                continue
            if len(pc.candidates) >= MAX_CANDIDATES:
                pc.candidates_dropped += 1
                continue
            pc.candidates.append(Candidate(kind == "local-candidate", ctype, address, _int(last.get("port")),
                                           (_str(last.get("protocol")) or "udp").lower(),
                                           _str(last.get("relatedAddress")), _int(last.get("relatedPort")),
                                           safe_url(u) if (u := _str(last.get("url"))) else None,
                                           _str(last.get("relayProtocol")), stat_id))
        elif kind == "candidate-pair":
            states = [s for s in f.get("state", []) if isinstance(s, str)]
            pc.pairs.append(Pair(stat_id, _str(last.get("localCandidateId")), _str(last.get("remoteCandidateId")),
                                 states[-1] if states else None, tuple(_dedupe(states)),
                                 any(v is True for v in f.get("nominated", [])),
                                 *(_int(last.get(k)) or 0 for k in ("requestsSent", "responsesReceived",
                                                                     "requestsReceived", "responsesSent",
                                                                     "bytesSent", "bytesReceived"))))
        elif kind == "transport":
            selected = [s for s in f.get("selectedCandidatePairId", []) if isinstance(s, str) and s]
            pc.selected_pair_id = selected[-1] if selected else pc.selected_pair_id
            pc.dtls_states = tuple(_dedupe([s for s in f.get("dtlsState", []) if isinstance(s, str)]))
            pc.ice_role = _str(last.get("iceRole"))


def _dedupe(items: list[str]) -> list[str]:
    out: list[str] = []
    for s in items:
        if not out or out[-1] != s:
            out.append(s[:64])
    return out


def _read_pc(key: str, raw: dict, t0: float | None) -> PeerConnection:
    pc = PeerConnection(key[:128], _str(raw.get("url"), 256) or "")
    pc.ice_servers, pc.ice_transport_policy, pc.config_read = _ice_servers(raw.get("rtcConfiguration"))
    log = raw.get("updateLog")
    seen: set[tuple[bool, str, str, int | None]] = set()
    for entry in log if isinstance(log, list) else []:
        if not isinstance(entry, dict):
            continue
        pc.updates += 1
        if pc.updates > MAX_UPDATES:
            pc.updates_dropped += 1
            continue
        kind = entry.get("type")
        kind = kind.lower().removeprefix("on") if isinstance(kind, str) else ""
        ms = _time(entry)
        t_s = (ms - t0) / 1000 if ms is not None and t0 is not None else None
        if t_s is not None:
            pc.first_t_s = t_s if pc.first_t_s is None else min(pc.first_t_s, t_s)
            pc.last_t_s = t_s if pc.last_t_s is None else max(pc.last_t_s, t_s)
        value = entry.get("value")
        text = value if isinstance(value, str) else json.dumps(value)[:4096] if isinstance(value, dict) else ""
        if kind in STATE_TYPES:
            pc.states.append(StateChange(t_s, STATE_TYPES[kind], _unquote(value)))
        elif kind in ("icecandidate", "addicecandidate"):
            c = _candidate_from(text, local=kind == "icecandidate")
            if c is not None and (c.local, c.address, c.candidate_type, c.port) not in seen:
                seen.add((c.local, c.address, c.candidate_type, c.port))
                if len(pc.candidates) < MAX_CANDIDATES:
                    pc.candidates.append(c)
                else:
                    pc.candidates_dropped += 1
        elif kind == "icecandidateerror":
            if len(pc.errors) < MAX_CANDIDATES:
                pc.errors.append(_candidate_error(value, t_s))
        elif kind in ("createoffer", "createofferonsuccess") or (
                kind == "setlocaldescription" and '"type":"offer"' in text.replace(" ", "")):
            pc.offer_sent = True
        elif kind == "setremotedescription":
            pc.remote_description = True
            pc.remote_sdp_candidates = text.count("a=candidate:")
        elif kind in ("createdatachannel", "ondatachannel", "datachannel"):
            pc.data_channels += 1
    _read_stats(pc, raw.get("stats"))
    # a candidate both logged and in the stats is kept once, as the stats give it (with its id and URL)
    in_stats = {(c.local, c.address, c.candidate_type, c.port) for c in pc.candidates if c.stat_id}
    pc.candidates = [c for c in pc.candidates
                     if c.stat_id or (c.local, c.address, c.candidate_type, c.port) not in in_stats]
    return pc


def _browser(doc: dict) -> str | None:
    data = doc.get("UserAgentData")
    if isinstance(data, dict) and isinstance(data.get("fullVersionList"), list):
        for b in data["fullVersionList"]:
            if isinstance(b, dict) and b.get("brand") in ("Chromium", "Google Chrome", "Microsoft Edge"):
                return f"{b['brand']} {_str(b.get('version'), 32)}"
    ua = _str(doc.get("UserAgent"))
    m = re.search(r"(Chrome|HeadlessChrome|Edg)/([\d.]+)", ua or "")
    return f"{m.group(1)} {m.group(2)}" if m else None


def _first_time(pcs: dict) -> float | None:
    first = None
    for raw in pcs.values():
        log = raw.get("updateLog") if isinstance(raw, dict) else None
        for entry in log[:MAX_UPDATES] if isinstance(log, list) else []:
            if isinstance(entry, dict) and (ms := _time(entry)) is not None:
                first = ms if first is None else min(first, ms)
    return first


def read(doc: object, name: str, compressed: bool = False, file_bytes: int = 0, json_bytes: int = 0) -> Dump:
    """The facts of a parsed dump; TraceFileError when it is JSON but not a webrtc-internals dump."""
    if not isinstance(doc, dict) or not isinstance(doc.get("PeerConnections"), dict):
        raise TraceFileError(f"{name}: JSON, but not a chrome://webrtc-internals dump (no PeerConnections object)")
    raw_pcs = doc["PeerConnections"]
    t0 = _first_time(raw_pcs)
    pcs = [_read_pc(str(k), v, t0) for k, v in list(raw_pcs.items())[:MAX_PEER_CONNECTIONS] if isinstance(v, dict)]
    last = max((pc.last_t_s for pc in pcs if pc.last_t_s is not None), default=None)
    gum = doc.get("getUserMedia")
    return Dump(name, compressed, file_bytes, json_bytes, _str(doc.get("UserAgent")), _browser(doc), pcs,
                max(0, len(raw_pcs) - MAX_PEER_CONNECTIONS), len(gum) if isinstance(gum, list) else 0,
                datetime.fromtimestamp(t0 / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
                if t0 else None,
                last)


def load(path: str | Path, rewrite: Callable[[str], str] | None = None) -> Dump:
    """The dump at PATH, read. REWRITE (--redact's Redactor.text) is applied to every string in it
    (SDP, candidates, addresses in the stats' value series) before it is read."""
    p = Path(path)
    doc, compressed, file_bytes, json_bytes = _load_json(p)
    if rewrite is not None:
        try:
            if isinstance(doc, dict):  # the browser's version (Chrome/156.0.0.0) is no address: kept
                doc = {k: v if k in KEPT_UNREWRITTEN else _rewritten(v, rewrite) for k, v in doc.items()}
        except RecursionError:
            raise _refuse(p, "JSON nested too deep; not a webrtc-internals dump") from None
    return read(doc, str(p), compressed, file_bytes, json_bytes)


KEPT_UNREWRITTEN = frozenset({"UserAgent", "UserAgentData"})


def _rewritten(value: object, rewrite: Callable[[str], str]) -> object:
    if isinstance(value, str):
        return rewrite(value)
    if isinstance(value, list):
        return [_rewritten(v, rewrite) for v in value]
    if isinstance(value, dict):
        return {k: _rewritten(v, rewrite) for k, v in value.items()}
    return value
