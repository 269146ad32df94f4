"""p2pdiag's own bugs end the run with exit 1 (trace kept, no finding about a peer); a broken relay is a finding.

The relays that answer wrongly are tiny real TCP servers on 127.0.0.1 (HTTP 200 to a WebSocket
upgrade, endless headers, megabytes of zeros, a close at once, /multistream/2.0.0). The bugs are
injected into p2pdiag's own code (monkeypatch, in this process) on runs against a real py-libp2p
relay and a real `p2pdiag listen` peer (aiortc).
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import socketserver
import threading
import time
from pathlib import Path

import pytest
from libp2p.peer.id import ID
from support import codes, run_p2pdiag

from p2pdiag import cli
from p2pdiag.identity import load_or_create

RELAY_ID = "12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp"
PEER_ID = "12D3KooWSsxh83J79Np5qRRv4unHwkD4jpPojwBn3GCZo12ArMZw"


def _answer(mode: str, conn: socket.socket) -> None:
    if mode == "close":
        return
    conn.recv(65536)
    if mode == "http-200":
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    elif mode == "endless-headers":
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\n")
        for _ in range(100_000):
            conn.sendall(b"X-More: " + b"a" * 1000 + b"\r\n")
    elif mode == "zeros":
        for _ in range(100 * 16):  # 100 MB, 64 KiB at a time
            conn.sendall(b"\0" * 65536)
    elif mode == "multistream-2":
        conn.sendall(b"\x13/multistream/2.0.0\n")
    time.sleep(20)


@pytest.fixture
def bad_server():
    servers = []

    def start(mode: str) -> int:
        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                with contextlib.suppress(OSError):  # p2pdiag hung up: what it should do
                    _answer(mode, self.request)

        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server.server_address[1]

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def _gave_up_after(finding: dict) -> float:
    found = [float(m.group(1)) for e in finding["evidence"] if (m := re.search(r"gave up after ([0-9.]+) s", e))]
    assert found, finding["evidence"]
    return found[0]


def _relay_dial(doc: dict) -> dict:
    return next(f for f in doc["findings"] if f["code"] in ("relay-unreachable", "relay-wrong-peer-id"))


def _dial_ws_relay(port: int) -> dict:
    """Dial through the relay at 127.0.0.1:port over /ws; the relay-connect finding."""
    result, doc = run_p2pdiag("dial", f"/ip4/127.0.0.1/tcp/{port}/ws/p2p/{RELAY_ID}/p2p-circuit/p2p/{PEER_ID}",
                              "--json", "--timeout", "30")
    assert result.returncode not in (1, 2), result.stderr
    assert "internal error" not in result.stderr
    finding = _relay_dial(doc)
    assert finding["code"] == "relay-unreachable"
    return finding


@pytest.mark.parametrize("mode", ["http-200", "endless-headers", "zeros"])
def test_a_websocket_relay_that_does_not_upgrade_is_a_finding(bad_server, mode):
    finding = _dial_ws_relay(bad_server(mode))
    assert "websocket upgrade failed" in finding["title"]
    assert _gave_up_after(finding) < 5


def test_a_websocket_relay_that_closes_at_once_is_reported_at_once(bad_server):
    finding = _dial_ws_relay(bad_server("close"))
    assert "closed" in finding["title"]
    assert _gave_up_after(finding) < 5  # at once, as over TCP, not after the whole --timeout


def test_relay_check_reports_a_refused_websocket_upgrade_as_unreachable_not_a_bug(bad_server):
    port = bad_server("http-200")
    result, doc = run_p2pdiag("relay-check", f"/ip4/127.0.0.1/tcp/{port}/ws/p2p/{RELAY_ID}", "--json",
                              "--timeout", "30")
    assert result.returncode not in (1, 2), result.stderr
    assert "relay-unreachable" in codes(doc), codes(doc)
    assert not [c for c in codes(doc) if "bug" in c or "crash" in c], codes(doc)


def test_a_relay_speaking_multistream_2_is_a_negotiation_failure_not_a_changed_key(bad_server):
    port = bad_server("multistream-2")
    result, doc = run_p2pdiag("dial", f"/ip4/127.0.0.1/tcp/{port}/p2p/{RELAY_ID}/p2p-circuit/p2p/{PEER_ID}",
                              "--json", "--timeout", "30")
    assert result.returncode not in (1, 2), result.stderr
    finding = _relay_dial(doc)
    assert finding["code"] == "relay-unreachable", finding
    assert "negotiation failed" in finding["title"]


# --- bugs in p2pdiag ------------------------------------------------------------------------------


def _run_cli(argv: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    return exit_info.value.code, capsys.readouterr().err


def _blame_free(trace: Path) -> list[str]:
    """The codes of the findings `analyze` gives for a trace a bug ended."""
    return codes(run_p2pdiag("analyze", str(trace), "--json")[1])


def _boom(*_args, **_kwargs):
    raise TypeError("injected programming error")


@pytest.mark.parametrize("target", ["p2pdiag.wire.circuit.HopMessage.decode", "p2pdiag.wire.identify.Identify.decode"])
def test_a_bug_in_the_relay_steps_is_exit_1_not_a_relay_finding(py_relay, tmp_path, monkeypatch, capsys, target):
    relay = py_relay()
    monkeypatch.setattr(target, classmethod(_boom) if target.endswith("decode") else _boom)
    trace = tmp_path / "dial.jsonl"
    code, err = _run_cli(["dial", PEER_ID, "--relay", relay.addr("tcp"), "--json", "--trace", str(trace),
                          "--timeout", "30"], capsys)
    assert code == 1, err
    assert "internal error" in err  # (the CLI names the ExceptionGroup around it, not the TypeError)
    assert trace.exists() and trace.read_text().count("\n") >= 2  # the trace is kept
    events = [json.loads(line)["type"] for line in trace.read_text().splitlines()[1:]]
    assert "identify.failed" not in events and "hop.failed" not in events
    found = _blame_free(trace)
    assert not [c for c in found if c.startswith(("relay-", "hop-"))], found


@pytest.mark.parametrize("target", ["p2pdiag.webrtc.peer.parse_sdp", "p2pdiag.webrtc.ice.bound_gathering"])
def test_a_bug_in_the_upgrade_is_exit_1_not_a_webrtc_finding(py_relay, p2pdiag_listener, tmp_path, monkeypatch,
                                                              capsys, target):
    relay = py_relay()
    listener = p2pdiag_listener(relay.addr("tcp"))  # a real aiortc responder, in its own process
    monkeypatch.setattr(target, _boom)
    trace = tmp_path / "dial.jsonl"
    code, err = _run_cli(["dial", listener.peer_id, "--relay", relay.addr("tcp"), "--json", "--trace",
                          str(trace), "--timeout", "40"], capsys)
    assert code == 1, err
    assert "internal error" in err
    events = [json.loads(line)["type"] for line in trace.read_text().splitlines()[1:]]
    assert "webrtc.upgrade_started" in events  # it did get that far
    assert "webrtc.upgrade_failed" not in events and "webrtc.signaling_failed" not in events
    found = _blame_free(trace)
    assert not [c for c in found if c.startswith("webrtc-")], found


def test_a_bug_in_the_listeners_stop_handler_is_exit_1_not_a_malformed_relay(py_relay, tmp_path, monkeypatch,
                                                                           capsys):
    relay = py_relay()
    monkeypatch.setattr("p2pdiag.wire.circuit.StopMessage.decode", classmethod(_boom))
    trace = tmp_path / "listen.jsonl"
    identity = tmp_path / "identity"
    peer_id = ID.from_pubkey(load_or_create(identity).public_key).to_base58()

    def dial_when_reserved() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if trace.exists() and '"reservation.accepted"' in trace.read_text():
                run_p2pdiag("dial", peer_id, "--relay", relay.addr("tcp"), "--no-upgrade", "--timeout", "15")
                return
            time.sleep(0.2)

    dialer = threading.Thread(target=dial_when_reserved, daemon=True)
    dialer.start()
    code, err = _run_cli(["listen", "--relay", relay.addr("tcp"), "--trace", str(trace), "--timeout", "40",
                          "--identity", str(identity)], capsys)
    dialer.join(30)
    assert code == 1, err
    assert "internal error" in err
    events = [json.loads(line) for line in trace.read_text().splitlines()[1:]]
    assert not [e for e in events if e["type"] == "circuit.upgrade_failed"]

