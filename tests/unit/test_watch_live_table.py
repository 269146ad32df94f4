"""watch's live table on a terminal (`sinks.LiveTable`), driven with a rich Console that writes to a
StringIO as a terminal would be written: a row per target with its state and why, and each change
printed above the table as it happens."""

from __future__ import annotations

import io
import re

from rich.console import Console

from p2pdiag.targets import parse_relay
from p2pdiag.watch.model import Module, Observation, RelayTarget, ReservationState, UpgradeTarget
from p2pdiag.watch.sinks import LiveTable, change_line
from p2pdiag.watch.tracker import Change, ChangeKind

RELAY_ID = "12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
T0 = 1.8e9


def terminal() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=200, color_system="standard", highlight=False), out


def relay_target() -> RelayTarget:
    return RelayTarget(name="relay-eu", interval_s=30, timeout_s=5,
                       relay=parse_relay(f"/ip4/127.0.0.1/tcp/4001/p2p/{RELAY_ID}"))


def upgrade_target() -> UpgradeTarget:
    return UpgradeTarget(name="node-a", interval_s=600, timeout_s=30, peer_id="12D3KooWnodea", relays=())


def obs(module: Module, target: str, ok: bool, at: float, **failure) -> Observation:
    return Observation(module=module, target=target, ok=ok, started_unix_s=at, duration_s=0.25, **failure)


def rows(screen: str) -> dict[str, list[str]]:
    """The last table drawn: target -> its cells (module, target, state, last probe, took, why)."""
    last_header = screen.rindex("┃ module")
    found: dict[str, list[str]] = {}
    for line in screen[last_header:].splitlines()[2:]:
        if not line.startswith("│"):
            continue
        cells = [c.strip() for c in line.strip("│").split("│")]
        if cells[1]:
            found[cells[1]] = cells
    return found


def test_rows_and_changes_above_the_table():
    console, out = terminal()
    relay, node = relay_target(), upgrade_target()
    table = LiveTable([relay, node], console)
    refused = {"failed_phase": "reserve", "error_kind": "RESERVATION_REFUSED", "error": "the relay said no"}
    lost = Change(ChangeKind.RESERVATION_LOST, Module.RELAY, "relay-eu", T0 + 5, "connection closed by the relay")
    failed = Change(ChangeKind.PROBE_FAILED, Module.RELAY, "relay-eu", T0 + 6, "reserve failed: RESERVATION_REFUSED")
    with table:
        shown = ANSI.sub("", out.getvalue())
        assert set(rows(shown)) == {"relay-eu", "node-a"}
        assert rows(shown)["relay-eu"][2] == "…"  # not probed yet

        table.observed(obs(Module.RELAY, "relay-eu", True, T0), [])
        table.observed(obs(Module.UPGRADE, "node-a", True, T0 + 1), [])
        table.reserved(ReservationState("relay-eu", up=False, at_unix_s=T0 + 5, error="closed"), [lost])
        table.observed(obs(Module.RELAY, "relay-eu", False, T0 + 6, **refused), [failed])
        table.live.refresh()
    screen = ANSI.sub("", out.getvalue())

    final = rows(screen)
    assert final["relay-eu"][:3] == ["relay", "relay-eu", "FAIL"]
    assert final["relay-eu"][4] == "0.25 s"
    assert final["relay-eu"][5] == "reserve failed: RESERVATION_REFUSED: the relay said no"
    assert final["node-a"][:3] == ["upgrade", "node-a", "ok"]
    assert final["node-a"][5] == ""
    # each change printed once, above a table drawn after it, in the order they happened
    at = []
    for c in (lost, failed):
        assert screen.count(change_line(c)) == 1, change_line(c)
        at.append(screen.index(change_line(c)))
        assert "┃ module" in screen[at[-1]:]
    assert at == sorted(at)
    assert screen.rindex(change_line(failed)) < screen.rindex("┃ module")


def test_a_recovered_target_shows_its_last_change():
    console, out = terminal()
    node = upgrade_target()
    table = LiveTable([node], console)
    back = Change(ChangeKind.PROBE_RECOVERED, Module.UPGRADE, "node-a", T0 + 2, "the probe\nsucceeds again")
    with table:
        table.observed(obs(Module.UPGRADE, "node-a", False, T0, failed_phase="dial", error_kind="TIMEOUT"), [])
        table.observed(obs(Module.UPGRADE, "node-a", True, T0 + 2), [back])
    final = rows(ANSI.sub("", out.getvalue()))
    assert final["node-a"][2] == "ok"
    assert final["node-a"][5] == "probe-recovered: the probe succeeds again"  # one line, as the row has


def test_a_peers_error_text_is_shown_as_written_never_as_markup():
    """A peer's error text and a change's detail are the peer's words: square brackets in them are
    text, not rich markup (a stray closing tag would otherwise raise while the table is drawn)."""
    console, out = terminal()
    node = upgrade_target()
    table = LiveTable([node], console)
    hostile = "[/red] closed [bold]by[/bold] peer"
    change = Change(ChangeKind.PROBE_FAILED, Module.UPGRADE, "node-a", T0, f"dial failed: {hostile}")
    with table:
        table.observed(obs(Module.UPGRADE, "node-a", False, T0, failed_phase="dial", error_kind="EOF",
                           error=hostile), [change])
        table.live.refresh()
    screen = ANSI.sub("", out.getvalue())
    assert rows(screen)["node-a"][5] == f"dial failed: EOF: {hostile}"
    assert change_line(change) in screen
