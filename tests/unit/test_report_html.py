"""`p2pdiag report`: the HTML page and its timeline, from recorded traces and js logs, read back as HTML.

The page is parsed (html.parser), never matched as text, so the tests check what a browser would
build: the verdict, the findings with their `p2pdiag explain CODE`, and the timeline's lanes, spans and
marks. A hostile trace's strings must come out as text, never as elements. Chromium's view of the
same page is tests/interop/test_report_chromium.py.
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from support.report import recorded_with

from p2pdiag.cli import _main
from p2pdiag.cli.analyze import read_input
from p2pdiag.cli.report import build, exit_code_of, placements, together
from p2pdiag.render.html import render
from p2pdiag.render.timeline import Timeline, align
from p2pdiag.trace.redact import Redactor

TRACES = Path(__file__).resolve().parents[1] / "traces"
DATA_CUT = TRACES / "relay" / "dial-py-data-cut.jsonl"
UPGRADED = TRACES / "webrtc" / "initiator-js-ok.jsonl"
ICE_FAILED = TRACES / "network" / "symmetric-symmetric-dial.jsonl"
LOOP = TRACES / "reconnect" / "listen-js-loop-relay-cut.jsonl"
JS_UPGRADED = TRACES / "jslog" / "dial-webrtc-upgraded.log"
JS_CUT = TRACES / "jslog" / "dial-relay-data-cut.log"
LISTENER_LOG, DIALER_LOG = TRACES / "jslog" / "listen-upgraded.log", TRACES / "jslog" / "dial-to-listen-upgraded.log"
DUMP = TRACES / "webrtc-internals" / "udp-blocked.json.gz"
JS_COLOUR = TRACES / "jslog" / "dial-no-reservation-colour-no-trace.log"
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>"\'&'


class Page(HTMLParser):
    """Every element with its attributes, and the text under each class of element."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.stack: list[set[str]] = []
        self.text_by_class: dict[str, list[str]] = {}
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.elements.append((tag, a))
        if tag not in ("meta", "br", "rect", "line", "polyline", "i", "img", "pattern"):  # not void in this page
            self.stack.append(set(a.get("class", "").split()))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        if tag not in ("meta", "br", "rect", "line", "polyline", "i", "img", "pattern") and self.stack:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        for classes in self.stack:
            for c in classes:
                self.text_by_class.setdefault(c, []).append(data)

    def classes(self, tag: str) -> list[str]:
        return [a.get("class", "") for t, a in self.elements if t == tag]

    def text(self, cls: str) -> str:
        return "".join(self.text_by_class.get(cls, []))


def _page(*paths: Path, redact: bool = False) -> tuple[str, list]:
    redactor = Redactor() if redact else None
    items = [read_input(p, "auto", redactor) for p in paths]
    reports = build([p.name for p in paths], items)
    return render(reports, "2026-12-07T00:00:00+00:00", exit_code_of(items), placements(items), together(items)), items


def test_a_relay_cut_shows_the_verdict_findings_and_the_cut_against_its_limits():
    html, (item,) = _page(DATA_CUT)
    page = Page(html)
    assert item.verdict.headline in page.text("headline")
    for f in item.verdict.findings:
        assert f"p2pdiag explain {f.code}" in html
        assert f.advice in page.text("finding")
    spans = page.classes("rect")
    assert any("span-relayed" in c for c in spans) and any("span-limit" in c for c in spans)
    assert "mark-cut" in " ".join(page.classes("g"))  # the relay's cut, where the verdict judged it
    assert page.classes("polyline") == ["bytes"]  # bytes climbing to the data limit
    assert len(item.verdict.steps) == page.classes("tr").count("ok") + sum(
        1 for c in page.classes("tr") if c in ("failed", "warning", "skipped", "info"))


def test_an_upgrade_draws_the_direct_connection_and_its_ice_pairs():
    page = Page(_page(UPGRADED)[0])
    spans = " ".join(page.classes("rect"))
    assert "span-upgrade-ok" in spans and "span-webrtc" in spans and "span-pair-succeeded" in spans
    assert "ICE pairs of webrtc-1" in page.text("group")


def test_a_failed_upgrade_draws_each_pair_failing():
    page = Page(_page(ICE_FAILED)[0])
    spans = page.classes("rect")
    assert sum("span-pair-failed" in c for c in spans) == 6  # the six pairs of the finding's evidence
    assert "span-upgrade-failed" in " ".join(spans)
    assert "failed at ice" in page.text("events")


def test_a_reconnect_loop_draws_its_rounds_and_each_cut():
    html, (item,) = _page(LOOP)
    page = Page(html)
    (loop,) = item.verdict.details.reconnect_loops
    assert sum("span-round" in c for c in page.classes("rect")) == len(loop.rounds) == 3
    assert " ".join(page.classes("g")).count("mark-cut") == 3  # each round ended by the relay at its 3 s limit
    assert "Reconnect loop" in page.text("group")


def test_a_js_log_says_what_was_read_and_draws_its_connection():
    html, (item,) = _page(JS_CUT)
    page = Page(html)
    read = item.verdict.details.read
    assert f"{read.recognised} recognised, {read.unrecognised} not recognised" in page.text("read")
    assert "mark-cut" in " ".join(page.classes("g"))
    assert any("span-relayed" in c for c in page.classes("rect"))


def test_the_page_fetches_nothing_and_runs_nothing():
    page = Page(_page(DATA_CUT, JS_UPGRADED, LOOP)[0])
    tags = {t for t, _ in page.elements}
    assert not tags & {"script", "link", "img", "iframe", "object", "embed"}
    for _, attrs in page.elements:
        for name in ("src", "href"):
            assert name not in attrs
    csp = [a["content"] for t, a in page.elements if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and csp[0].startswith("default-src 'none'")


def _hostile_trace(tmp_path: Path) -> Path:
    """The data-cut trace with the attacker's text in every free-text field a relay or peer controls."""
    lines = []
    for line in DATA_CUT.read_text().splitlines():
        obj = json.loads(line)
        for key in ("reason", "agent_version", "error", "protocol_version"):
            if isinstance(obj.get(key), str):
                obj[key] = HOSTILE
        if obj.get("type") == "identify.completed":
            obj["protocols"] = [HOSTILE]
        lines.append(json.dumps(obj))
    path = tmp_path / "<b onmouseover=alert(2)>hostile.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_hostile_trace_is_shown_as_text_never_as_markup(tmp_path):
    path = _hostile_trace(tmp_path)
    page = Page(html := _page(path)[0])
    assert not {t for t, _ in page.elements} & {"script", "img", "b"}
    assert not any(k.startswith("on") for _, a in page.elements for k in a)
    assert HOSTILE not in html  # only escaped
    assert HOSTILE in page.text("finding") + page.text("events") + page.text("steps")  # shown, as text
    assert "<b onmouseover=alert(2)>hostile.jsonl" in page.text("input-head")


def test_report_exits_as_analyze_of_the_same_inputs(tmp_path, capsys):
    """One input: its verdict's code; several: the dialing side's verdict's, as `analyze` gives it."""
    out = tmp_path / "r.html"
    assert _main(["report", str(DATA_CUT), "-o", str(out)]) == _main(["analyze", str(DATA_CUT)]) == 3
    assert _main(["report", str(UPGRADED), "-o", str(out)]) == 0
    for inputs in ([str(DATA_CUT), str(UPGRADED)], [str(LISTENER_LOG), str(DIALER_LOG)]):
        assert _main(["report", *inputs, "-o", str(out)]) == _main(["analyze", *inputs])
    assert _main(["report", str(UPGRADED), str(DATA_CUT), "-o", str(out)]) == 0  # the first dial's
    headlines = Page(out.read_text()).text("headline")
    assert headlines.startswith("Upgraded to a direct WebRTC connection") and "The relay cut" in headlines
    assert capsys.readouterr().out.splitlines()[-1] == f"Report written to {out}"


@pytest.mark.parametrize("args, says", [
    (["report", "missing.jsonl", "-o", "{out}"], "missing.jsonl"),
    (["report", "{bad}", "-o", "{out}"], "neither a p2pdiag trace"),
    (["report", "--format", "pdf", str(DATA_CUT), "-o", "{out}"], "--format 'pdf'"),
    (["report", str(DATA_CUT), str(DATA_CUT)] * 6 + ["-o", "{out}"], "at most 16"),
    (["report", str(DATA_CUT), "-o", "{nodir}"], "cannot write"),
    (["report", str(DATA_CUT)], "-o"),
])
def test_bad_input_is_one_line_and_exit_2_and_writes_nothing(tmp_path, capsys, args, says):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello\nthis is not a trace\n")
    out = tmp_path / "r.html"
    names = {"out": str(out), "bad": str(bad), "nodir": str(tmp_path / "no" / "r.html")}
    assert _main([a.format(**names) for a in args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("p2pdiag: error:") and says in err[0]
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]


def test_redact_replaces_the_addresses_in_the_report():
    html, _ = _page(DATA_CUT, redact=True)
    plain, _ = _page(DATA_CUT)
    assert "12D3KooWSA12rbAdJtrtC1i8qBuPMdqKKxNeCr1a8xMbPtN4Kezy" in plain
    assert "12D3KooWSA12rbAdJtrtC1i8qBuPMdqKKxNeCr1a8xMbPtN4Kezy" not in html
    assert "Redacted:" in Page(html).text("note")


def _timeline(origin: str | None, end_s: float = 5.0, has_times: bool = True) -> Timeline:
    when = datetime.datetime.fromisoformat(origin) if origin else None
    return Timeline(end_s=end_s, lanes=(), origin=when, origin_source="x", has_times=has_times)


def test_inputs_with_wall_clocks_share_an_axis_and_the_others_get_their_own():
    axes = align([_timeline("2026-12-07T10:00:02+00:00"), _timeline(None, has_times=False),
                  _timeline("2026-12-07T10:00:00.500+00:00")])
    assert [[p.index for p in a.placed] for a in axes] == [[0, 2], [1]]
    shared = {p.index: p.offset_s for p in axes[0].placed}
    assert shared == {0: 1.5, 2: 0.0}
    assert "aligned by wall clock" in axes[0].placed[0].how and "not drawn" in axes[1].placed[0].how
    (alone,) = align([_timeline("2026-12-07T10:00:02+00:00")])
    assert alone.placed[0].offset_s == 0 and "its own clock" in alone.placed[0].how


def test_inputs_far_apart_in_time_are_not_squeezed_onto_one_axis():
    axes = align([_timeline("2026-11-21T10:00:00+00:00"), _timeline("2026-12-07T10:00:00+00:00"),
                  _timeline("2026-12-07T10:09:00+00:00")])  # within ALIGN_GAP_S of the second's end
    assert [[p.index for p in a.placed] for a in axes] == [[0], [1, 2]]
    assert "more than 10 min away" in axes[0].placed[0].how


def test_a_trace_and_a_log_from_their_wall_clocks_go_on_one_picture(tmp_path):
    trace = recorded_with(DATA_CUT, JS_CUT, tmp_path, -0.25)
    html, _ = _page(trace, JS_CUT, JS_COLOUR)
    page = Page(html)
    timelines = [a for t, a in page.elements if t == "svg" and a.get("class") == "timeline"]
    (svg,) = timelines  # the coloured log (no times of day) is not drawn
    assert svg["aria-label"] == "Timeline of inputs 1, 2"
    placed = page.text("placed")
    assert "2. dial-relay-data-cut.log: aligned by wall clock" in placed and "starts at +0.250 s" in placed
    assert "3. dial-no-reservation-colour-no-trace.log: not drawn" in placed
    heads = page.text("input-head")
    assert all(f"{n}. {p.name}" in heads for n, p in enumerate((DATA_CUT, JS_CUT), start=1))


EVERY_INPUT = sorted([*TRACES.glob("*/*.jsonl"), *(TRACES / "jslog").glob("*.log"),
                      *(p for p in (TRACES / "webrtc-internals").glob("*.json.gz") if "dropped" not in p.name)])


@pytest.mark.parametrize("path", EVERY_INPUT, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_recorded_input_gives_a_page_with_its_verdict(path):
    html, (item,) = _page(path)
    page = Page(html)
    assert page.text("headline").strip() == item.verdict.headline
    assert len([c for c in page.classes("div") if c.startswith("finding")]) == len(item.verdict.findings)
    assert f"exit {int(item.verdict.exit_code)}" in page.text("verdict")


def test_a_hostile_log_is_shown_as_text_never_as_markup(tmp_path):
    log = tmp_path / "hostile.log"
    log.write_text(JS_CUT.read_text().replace("StreamResetError: The stream has been reset", HOSTILE))
    html, _ = _page(log)
    page = Page(html)
    assert not {t for t, _ in page.elements} & {"script", "img"}
    assert HOSTILE not in html and HOSTILE in page.text("events")


def _many_rounds(rounds: int) -> tuple:
    """LOOP's connections repeated ROUNDS times, 30 s apart, each with ids of its own."""
    import dataclasses

    from p2pdiag.trace.file import load

    trace = load(LOOP)
    events = []
    for k in range(rounds):
        for e in trace.events:
            ids = {f: f"{getattr(e, f)}-{k}" for f in ("connection_id", "relayed_connection_id") if hasattr(e, f)}
            if ids or k == 0:
                events.append(dataclasses.replace(e, t_s=e.t_s + 30 * k, **ids))
    return dataclasses.replace(trace, events=tuple(events)), read_input(LOOP, "trace", None).verdict


def test_a_run_of_many_connections_draws_a_bounded_picture_with_linear_work():
    from support.work import assert_linear, cost

    from p2pdiag.render.timeline import MAX_CONNECTIONS, from_trace

    trace, verdict = _many_rounds(100)  # 300 relayed connections, 300 upgrade attempts
    timeline = from_trace(trace, verdict)
    relayed = [lane for lane in timeline.lanes if lane.group == "Relayed connection"]
    assert len(relayed) == MAX_CONNECTIONS + 1 and relayed[-1].label == f"{300 - MAX_CONNECTIONS} more not drawn"
    upgrades = [lane for lane in timeline.lanes if lane.group == "WebRTC upgrade"]
    assert upgrades[-1].label == f"{300 - MAX_CONNECTIONS} more attempts not drawn"
    c = cost(lambda: from_trace(trace, verdict))
    assert_linear(c, len(trace.events), base_lines=20_000, lines_per_unit=100, base_bytes=1 << 20,
                  bytes_per_unit=400, what="events")


def test_ids_are_unique_in_a_page_of_several_pictures():
    page = Page(_page(DATA_CUT, JS_UPGRADED, JS_COLOUR)[0])
    ids = [a["id"] for _, a in page.elements if "id" in a]
    assert len([t for t, a in page.elements if t == "svg" and "timeline" in a.get("class", "")]) == 2
    assert len(ids) == len(set(ids)) and "hatch" in ids


def several_headline(*paths: Path) -> str:
    return json.loads(subprocess.run([sys.executable, "-m", "p2pdiag", "analyze", "--json", *map(str, paths)],
                                     capture_output=True, text=True, check=False).stdout)["headline"]


def test_the_two_sides_of_one_connection_are_placed_as_analyze_places_them():
    """The listener's and the dialer's js logs: one axis, the dialer's log placed where the relayed
    connection seen from both sides puts it (several.place), and the page says so."""
    html, items = _page(LISTENER_LOG, DIALER_LOG)
    page = Page(html)
    assert "seen from both sides" in html and "agree within" in html
    assert page.text("together").strip() == several_headline(LISTENER_LOG, DIALER_LOG)
    assert page.classes("svg").count(page.classes("svg")[0]) >= 1  # drawn
    assert items[0].verdict.outcome.value == "listened" and items[1].verdict.outcome.value == "upgraded"


def test_a_webrtc_internals_dump_is_reported_with_its_verdict_not_drawn():
    html, (item,) = _page(DUMP)
    page = Page(html)
    assert item.verdict.headline in page.text("headline")
    assert "not drawn yet" in html
