"""The HTML report (`p2pdiag report`): verdicts and their timeline picture as one self-contained file.

`render` is a pure function of the inputs' verdicts and timelines: it returns the page as a string,
with its CSS inline and the picture as inline SVG, nothing to fetch and no script, so it opens from
an email attachment and prints. Every string from the evidence goes through Jinja2's autoescape (the
template, `templates/report.html.j2`, has no `|safe`), so a hostile trace cannot inject markup.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jinja2

from p2pdiag import __version__
from p2pdiag.diagnosis.model import Verdict
from p2pdiag.render.timeline import Axis, Lane, Timeline, align, groups

WIDTH = 1000
LABEL_X = 8
PLOT_X0 = 330  # where time 0 is drawn; the lane labels are left of it
PLOT_X1 = 985
ROW_H = 22
HEAD_H = 24
AXIS_H = 28
LABEL_CHARS = 52  # a lane label longer than this is cut (its <title> has it whole)
LIMIT_STRETCH = 2.0  # a limit ending within this many times the evidence's span widens the axis to show it
LABEL_PX = 6.6  # the width of one character of a mark's label (11px bold), for the box behind it
MARK_GAP = 70  # px: outcome marks closer than this in one lane share one label
MARK_WORDS = {"cut": "cut", "closed": "closed", "failed": "failed", "ok": "ok", "state": ""}


@dataclass(frozen=True, slots=True)
class InputReport:
    """One input of the report: what it is, what was read of it, its verdict and its timeline."""

    name: str  # as given on the command line
    kind: str  # "p2pdiag trace (dial)", "js-libp2p debug log"
    read: tuple[tuple[str, str], ...]  # what was read, as (what, value) rows
    verdict: Verdict
    timeline: Timeline


def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("p2pdiag.render", "templates"), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def render(inputs: Sequence[InputReport], generated_at: str, exit_code: int,
           placements: Sequence[tuple[float | None, str]] | None = None, together: Verdict | None = None) -> str:
    """The report page for INPUTS (in the order given). GENERATED_AT is shown as given (the caller's
    clock, so this stays a pure function); EXIT_CODE is what the command returns for them; PLACEMENTS,
    per input its offset on one timeline and how it was found (several.place), else wall clocks alone;
    TOGETHER, of several inputs, the one verdict `analyze` gives of them all (several.combine)."""
    timelines = [i.timeline for i in inputs]
    axes = align(timelines, placements)
    pictures = [_picture(axis, inputs, n) for n, axis in enumerate(axes)]
    for picture, axis in zip(pictures, axes, strict=True):  # an axis of inputs without times: words only
        picture["drawn"] = any(inputs[p.index].timeline.has_times for p in axis.placed)
    return _environment().get_template("report.html.j2").render(
        inputs=inputs, pictures=pictures, generated_at=generated_at, version=__version__,
        exit_code=exit_code, placed={p.index: p for a in axes for p in a.placed}, together=together)


# --- the picture ---------------------------------------------------------------------------------


def _nice_step(span: float) -> float:
    """A tick step of 1, 2 or 5 times a power of ten giving 4 to 10 ticks over SPAN."""
    if span <= 0:
        return 1.0
    raw = span / 6
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _axis_end(axis: Axis, inputs: Sequence[InputReport]) -> float:
    timelines = [i.timeline for i in inputs]
    end = axis.end_s(timelines)
    for placed in axis.placed:
        for lane in timelines[placed.index].lanes:
            for span in lane.spans:
                limit_end = None if span.end_s is None else placed.offset_s + span.end_s
                if span.kind == "limit" and limit_end is not None and limit_end <= end * LIMIT_STRETCH:
                    end = max(end, limit_end)
    return end if end > 0 else 1.0


def _cut(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[:chars - 1] + "…"


def _picture(axis: Axis, inputs: Sequence[InputReport], number: int) -> dict[str, Any]:
    """The shapes of one axis' SVG, in drawing order, and the numbered marks listed under it."""
    end = _axis_end(axis, inputs)
    scale = (PLOT_X1 - PLOT_X0) / end

    def x(t: float) -> float:
        return round(PLOT_X0 + min(max(t, 0.0), end) * scale, 1)

    shapes: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    y = AXIS_H
    for placed in axis.placed:
        report = inputs[placed.index]
        shapes.append({"t": "text", "x": LABEL_X, "y": y + 16, "cls": "input-head",
                       "text": f"{placed.index + 1}. {_cut(report.name, 70)}", "title": report.name})
        y += HEAD_H
        lanes = report.timeline.lanes
        if not lanes:
            shapes.append({"t": "text", "x": LABEL_X + 12, "y": y + 15, "cls": "empty",
                           "text": "nothing to draw: no relayed connection or upgrade in this evidence"
                           if report.timeline.has_times else "nothing to draw: the evidence has no times",
                           "title": ""})
            y += ROW_H
        for group in groups(lanes):
            shapes.append({"t": "text", "x": LABEL_X + 4, "y": y + 14, "cls": "group", "text": group, "title": ""})
            y += ROW_H - 4
            for lane in (lane for lane in lanes if lane.group == group):
                y = _lane(shapes, events, lane, y, placed.offset_s, x, end, placed.index)
        y += 6
    _number(events)
    height = y + 8
    ticks = []
    unit, per = ("s", 1.0) if end < 600 else ("min", 60.0) if end < 36000 else ("h", 3600.0)
    step = _nice_step(end / per)
    t = 0.0
    while t <= end / per + 1e-9:
        ticks.append({"x": x(t * per), "label": f"{t:g} {unit}"})
        t = round(t + step, 9)
    return {"id": f"timeline-{number + 1}", "width": WIDTH, "height": height, "shapes": shapes, "ticks": ticks,
            "axis_y": AXIS_H - 6, "plot_x0": PLOT_X0, "plot_x1": PLOT_X1, "events": events,
            "origin": axis.origin.isoformat(timespec="milliseconds") if axis.origin else None,
            "inputs": [p.index for p in axis.placed]}


def _number(events: list[dict[str, Any]]) -> None:
    """The outcome marks numbered in time order, across every input on the axis; each mark's label
    gets its number (or the range of its cluster's)."""
    events.sort(key=lambda e: e["t"])
    numbers: dict[int, list[int]] = {}
    for n, event in enumerate(events, start=1):
        event["n"] = n
        numbers.setdefault(id(event["shape"]), []).append(n)
    for event in events:
        got = sorted(numbers[id(event["shape"])])
        shape = event["shape"]
        shape["n"] = f"[{got[0]}]" if len(got) == 1 else f"[{got[0]}–{got[-1]}]"
        shape["w"] = round(LABEL_PX * (len(shape["word"]) + 1 + len(shape["n"])) + 6, 1)  # its backing box


def _lane(shapes: list[dict[str, Any]], events: list[dict[str, Any]], lane: Lane, y: float, offset: float,
          x: Any, end: float, index: int) -> float:
    alt = sum(1 for s in shapes if s.get("cls", "").startswith("lane")) % 4 == 2  # every other lane (2 shapes each)
    shapes.append({"t": "rect", "x": 0, "y": y, "w": WIDTH, "h": ROW_H, "cls": "lane alt" if alt else "lane",
                   "title": ""})
    shapes.append({"t": "text", "x": LABEL_X + 12, "y": y + 15, "cls": "lane-label",
                   "text": _cut(lane.label, LABEL_CHARS),
                   "title": lane.label + (f" ({lane.note})" if lane.note else "")})
    for span in lane.spans:
        x0 = x(offset + span.start_s)
        x1 = PLOT_X1 if span.end_s is None else x(offset + span.end_s)
        width = max(x1 - x0, 2.0)
        cls = f"span span-{span.kind}" + (" open" if span.end_s is None else "")
        shapes.append({"t": "rect", "x": x0, "y": y + 5, "w": round(width, 1), "h": ROW_H - 10, "cls": cls,
                       "title": span.label})
        if span.kind == "limit" or span.kind.startswith("round"):
            short = span.label.split(" (")[0].split(":")[0]  # "time limit 3 s", "round 2"
            beyond = f"→ ends at +{offset + span.end_s:g} s" if span.end_s is not None and offset + span.end_s > end \
                else ""
            room = width - (6 * len(beyond) + 12 if beyond else 0)  # the in-bar text must not run into it
            shapes.append({"t": "text", "x": min(x0 + 4, PLOT_X1 - 4), "y": y + 15, "cls": "span-text",
                           "text": _cut(short, max(int(room / 6), 1)) if room > 30 else "", "title": span.label})
            if beyond:
                shapes.append({"t": "text", "x": PLOT_X1 - 2, "y": y + 15, "cls": "beyond", "anchor": "end",
                               "text": beyond, "title": span.label})
    if lane.series:
        points = " ".join(f"{x(offset + t)},{round(y + ROW_H - 3 - f * (ROW_H - 6), 1)}" for t, f in lane.series)
        shapes.append({"t": "line", "x1": x(offset + lane.series[0][0]), "y1": y + 3, "x2": PLOT_X1, "y2": y + 3,
                       "cls": "limit-line", "title": lane.note})
        shapes.append({"t": "polyline", "points": points, "cls": "bytes", "title": lane.note})
    elif lane.note and not lane.spans:
        shapes.append({"t": "text", "x": PLOT_X0 + 4, "y": y + 15, "cls": "empty", "text": lane.note, "title": ""})
    for mark in lane.marks:
        if mark.kind == "state":
            mx = x(offset + mark.t_s)
            shapes.append({"t": "line", "x1": mx, "y1": y + 4, "x2": mx, "y2": y + ROW_H - 4, "cls": "mark mark-state",
                           "title": f"+{offset + mark.t_s:.3f} s {mark.label}"})
    # the outcome marks, numbered for the table under the picture; marks too close to label apart share a label
    clusters: list[list[Any]] = []
    for mark in (m for m in lane.marks if m.kind != "state"):
        if clusters and x(offset + mark.t_s) - x(offset + clusters[-1][0].t_s) < MARK_GAP:
            clusters[-1].append(mark)
        else:
            clusters.append([mark])
    for cluster in clusters:
        head = cluster[0]
        mx = x(offset + head.t_s)
        kind = next((m.kind for m in cluster if m.kind in ("cut", "failed")), head.kind)
        shape = {"t": "mark", "x": mx, "y": y, "h": ROW_H, "cls": f"mark mark-{kind}",
                 "title": "; ".join(f"+{offset + m.t_s:.3f} s {m.label}" for m in cluster),
                 "n": "", "word": MARK_WORDS[kind], "anchor": "end" if mx > PLOT_X1 - 90 else "start",
                 "w": 0}
        shapes.append(shape)
        events += [{"n": 0, "t": offset + m.t_s, "input": index + 1, "lane": lane.label, "kind": m.kind,
                    "text": m.label, "shape": shape} for m in cluster]
    return y + ROW_H
