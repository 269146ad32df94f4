"""Re-record the js-libp2p logs `p2pdiag analyze` reads from a browser console (js-libp2p 3.x in real,
headless Chromium).

    python tests/record/jslog_browser.py     # rewrites tests/traces/jslog/browser-*.log

The dialing node is the page of interop/js/browser-peer.mjs (Debian's /usr/bin/chromium driven by
playwright-core), started with `--libp2p-debug 'libp2p:*,*:trace'`: an init script sets
`localStorage.debug` to that before the page's code runs, so js-libp2p's logger (`weald`, the `debug`
package's browser build) writes every record through `console.debug` as
`console.debug("%c<namespace> %c<message>%c +<diff>", "color: #XXXXXX", "color: inherit", <the
message's own arguments…>, "color: #XXXXXX")`. The page reserves a slot on a js relay (over its /ws
address, all on loopback), then dials `--dial` (a js listener through that relay) and pings it.

What is captured, and how it becomes the text a user copies. `--console-capture` records, for every
console message, the CDP event `Runtime.consoleAPICalled` over a session of the page: the very event
DevTools' console panel is fed (its wall-clock `timestamp`, the call's `type`, its arguments as remote
objects with V8's previews, the caller's frame). DevTools turns each into one row: the timestamp
(when "Show timestamps" is on, local time `HH:MM:SS.mmm`), the source link (the script's last path
part and 1-based line, `peer.js:12345`), then the message: the first string argument read as a format
string (`%s` a string, `%d`/`%i` an integer, `%f` a number, `%o`/`%O` an object shown as its one-line
preview, `%c` a style: applied, no text), the arguments left over appended with a space each. Copying
rows (select, Ctrl+C, or "Save as…", whose text is each row's `toExportString`: the text nodes of the
row in order) gives exactly those parts separated by spaces, one row a line, and a message with
newlines (an error's stack) over several lines. That is read in devtools-frontend's
ConsoleViewMessage.ts: `toExportString()` joins the text nodes of the row's content; `updateTimestamp()`
inserts first `formatTimestamp(timestamp, false) + ' '`; the anchor built from the top stack frame is
followed by a space, "to prevent the anchor text from being glued to the console message when the
user selects and copies the console messages". `render()` below does that from the captured event, so
the logs are what DevTools shows for these very messages; the one thing not reproduced is a row
repeated in a run of identical messages (DevTools folds them behind a count; the `+Nms` diff makes
js-libp2p's rows differ). Everything is rendered as if the console's level were "Verbose", which
debug lines need (Chrome hides `console.debug` at its default level): the docs tell the user so.

Not verified here: a copy through DevTools' own UI (none runs headless). The format string and the
timestamp and link follow the code cited above; the one-line previews of objects (`_preview()`) are
re-implemented for the shapes these logs have (plain objects, arrays, class instances, errors) after
DevTools' RemoteObjectPreviewFormatter, from the previews V8 sent (strings it shortened keep its `…`).

Three renderings of the same capture are written per run:
- `browser-<case>.log`: rows as copied with "Show timestamps" on (`HH:MM:SS.mmm peer.js:N …`);
- `browser-<case>-no-timestamps.log`: the same rows with timestamps off (no time at all);
- `browser-<case>-raw.log` (one case): the format string and its arguments joined by spaces,
  unformatted, with its `%c` and the `color: …` CSS strings left in, no time and no source link:
  exactly what Playwright's `ConsoleMessage.text()` returns for these events (`_playwright()` is its
  Chromium `renderPreview`), the form a console forwarded by a test runner or an in-page collector
  that does not apply the format arrives in.

The local time zone is UTC here (TZ is set for Chromium's process and for the rendering), so the
recordings do not depend on the machine's zone. tests/unit/test_jslog_table.py checks the verdicts.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "record"))
from jslog import DEBUG, LOGS, NOBODY, node22, start_relay
from support import JS_DIR, Proc, _ready_json

SETTLE_S = 1.5  # after the page's dial result: lines the dial's end still logs (closing, aborts)


def _preview(p: dict) -> str:
    """An object preview as DevTools' RemoteObjectPreviewFormatter writes it on one line."""
    def value(prop: dict) -> str:
        if prop.get("type") == "string":
            return "'" + prop.get("value", "") + "'"
        if "valuePreview" in prop:
            return _preview(prop["valuePreview"])
        return prop.get("value", "")

    props = p.get("properties", [])
    more = "…" if p.get("overflow") else ""
    if p.get("subtype") == "array":
        items = ", ".join(value(x) for x in props)
        return f"{p.get('description', 'Array')} [{items}{', ' + more if more and items else more}]".replace(
            "Array(", "(", 1)
    body = ", ".join(f"{x['name']}: {value(x)}" for x in props)
    desc = p.get("description", "Object")
    head = "" if desc == "Object" else desc + " "
    return f"{head}{{{body}{', ' + more if more and body else more}}}"


def _arg(a: dict, quoted: bool = False) -> str:
    """A console argument as its row shows it."""
    t = a.get("type")
    if t == "string":
        return a.get("value", "")
    if "unserializableValue" in a:
        return a["unserializableValue"]
    if t in ("number", "boolean"):
        return json.dumps(a.get("value"))
    if t == "undefined":
        return "undefined"
    if a.get("subtype") == "null":
        return "null"
    if a.get("subtype") == "error":
        return a.get("description", "")
    if "preview" in a:
        return _preview(a["preview"])
    return a.get("description", "")


SPEC = re.compile(r"%([sdifoOc%])")


def _formatted(args: list[dict]) -> str:
    """The message as the console shows it: the format string applied (DevTools' ConsoleFormat)."""
    if not args:
        return ""
    if args[0].get("type") != "string":
        return " ".join(_arg(a) for a in args)
    rest = list(args[1:])
    out: list[str] = []
    pos = 0
    fmt = args[0].get("value", "")
    for m in SPEC.finditer(fmt):
        out.append(fmt[pos:m.start()])
        pos = m.end()
        kind = m.group(1)
        if kind == "%":
            out.append("%")
            continue
        if not rest:
            out.append(m.group(0))
            continue
        a = rest.pop(0)
        if kind == "c":
            continue  # a style: applied, no text
        if kind in "di":
            v = a.get("value")
            out.append(str(int(v)) if isinstance(v, (int, float)) else "NaN")
        elif kind == "f":
            v = a.get("value")
            out.append(str(v) if isinstance(v, (int, float)) else "NaN")
        else:
            out.append(_arg(a))
    out.append(fmt[pos:])
    return " ".join(["".join(out), *(_arg(a) for a in rest)])


def _playwright(a: dict) -> str:
    """An argument as Playwright's ConsoleMessage.text() writes it (its Chromium `renderPreview`)."""
    if a.get("type") == "undefined":
        return "undefined"
    if "value" in a:
        v = a["value"]
        return "null" if v is None else ("true" if v is True else "false" if v is False else str(v))
    if "unserializableValue" in a:
        return a["unserializableValue"]
    preview = a.get("preview")
    if a.get("description") == "Object" and preview:
        return "{" + ", ".join(f"{x['name']}: {x.get('value', '')}" for x in preview.get("properties", [])) + "}"
    if a.get("subtype") == "array" and preview:
        items = sorted((int(x["name"]), x.get("value", "")) for x in preview.get("properties", [])
                       if x["name"].isdigit())
        return "[" + ", ".join(str(v) for _, v in items) + "]"
    return a.get("description", "")


def _raw(args: list[dict]) -> str:
    """The format string and its arguments joined by spaces, unformatted (`%c` and CSS left in), as
    Playwright's ConsoleMessage.text() gives them."""
    return " ".join(_playwright(a) for a in args)


def render(event: dict, timestamps: bool, raw: bool = False) -> str:
    """One captured console message as the row a user copies (see the module's docstring)."""
    text = _raw(event["args"]) if raw else _formatted(event["args"])
    if raw:
        return text
    parts = []
    if timestamps:
        t = datetime.fromtimestamp(event["timestamp"] / 1000, tz=UTC)
        parts.append(t.strftime("%H:%M:%S.") + f"{t.microsecond // 1000:03d}")
    frame = event.get("frame")
    if frame and frame.get("url"):
        parts.append(f"{Path(urlparse(frame['url']).path).name or frame['url']}:{frame['line'] + 1}")
    parts.append(text)
    return " ".join(parts)


def record(node: str, name: str, relay_ws: str, target: str, raw: bool = False) -> dict:
    """Run the browser peer once, dialing TARGET from the page; write NAME's renderings; return the
    page's dial result."""
    capture = LOGS / f".{name}.capture.jsonl"
    proc = Proc([node, str(JS_DIR / "browser-peer.mjs"), "--relay", relay_ws, "--libp2p-debug", DEBUG,
                 "--dial", target, "--console-capture", str(capture)], "browser peer", env={"TZ": "UTC"})
    try:
        _ready_json(proc)
        deadline = time.monotonic() + 40
        result = None
        while result is None and time.monotonic() < deadline and proc.popen.poll() is None:
            for line in list(proc.stderr):
                if '"event":"dial_result"' in line:
                    result = json.loads(line)
            time.sleep(0.1)
        time.sleep(SETTLE_S)
    finally:
        proc.signal(signal.SIGTERM)
        proc.wait(20)
    events = [json.loads(s) for s in capture.read_text().splitlines() if s.strip()]
    capture.unlink()
    # the page's own JSON lines (log.js, console.log) are the app's: a user's console has its app's
    # lines among js-libp2p's too; they are kept
    (LOGS / f"{name}.log").write_text("".join(render(e, True) + "\n" for e in events))
    (LOGS / f"{name}-no-timestamps.log").write_text("".join(render(e, False) + "\n" for e in events))
    if raw:
        (LOGS / f"{name}-raw.log").write_text("".join(render(e, False, raw=True) + "\n" for e in events))
    print(name, len(events), "console messages;", json.dumps(result)[:300])
    return result or {}


def main() -> None:
    node = node22()
    procs: list[Proc] = []
    try:
        relay_ws = next(a for a in start_relay(node, procs) if "/ws/" in a)
        lst = Proc([node, str(JS_DIR / "listener.mjs"), "--relay", relay_ws], "js listener")
        procs.append(lst)
        addrs = _ready_json(lst)["addrs"]
        webrtc = next(a for a in addrs if "/webrtc/" in a and "/ws/" in a)
        for _ in range(3):  # WebRTC on loopback now and then fails; the upgraded run is the one kept
            if record(node, "browser-webrtc-upgraded", relay_ws, webrtc, raw=True).get("webrtc"):
                break
        record(node, "browser-no-reservation", relay_ws, f"{relay_ws}/p2p-circuit/p2p/{NOBODY}")
        plain = Proc([node, str(JS_DIR / "listener.mjs"), "--relay", relay_ws, "--no-webrtc"], "js listener")
        procs.append(plain)
        circuit = next(a for a in _ready_json(plain)["addrs"] if "/ws/" in a and "/webrtc" not in a)
        record(node, "browser-no-webrtc-signaling", relay_ws, circuit.replace("/p2p-circuit/", "/p2p-circuit/webrtc/"))
    finally:
        for p in reversed(procs):
            p.stop()


if __name__ == "__main__":
    os.environ.setdefault("TZ", "UTC")
    main()
