"""`p2pdiag lab`'s results: a lab that is up, the labs on this machine, a scenario's run; text or JSON.

What to print comes from the lab's status and the scenario's result; nothing is judged here.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, TextIO

from p2pdiag.render.json import SCHEMA_VERSION

if TYPE_CHECKING:
    from p2pdiag.lab.scenario import ScenarioResult


def dumps(fields: dict[str, Any]) -> str:
    """A lab document: `schema_version` first, then FIELDS."""
    return json.dumps({"schema_version": SCHEMA_VERSION, **fields}, indent=2)


def delay_text(line: dict[str, Any]) -> str:
    state = f"running (pid {', '.join(map(str, line['pids']))})" if line["running"] else "NOT RUNNING"
    jitter = f" ± {line['jitter_ms']:g}" if line["jitter_ms"] else ""
    return f"{line['delay_ms']:g}{jitter} ms each way, {state}, in {line['namespace']}"


def router_text(router: Any) -> str:
    return ", ".join(f"{k}={v}" for k, v in router.to_dict().items())


def render_up(lab: Any, topology: Any, status: Any, out: TextIO) -> None:
    print(f"lab {lab.lab_id} is up (router a: {router_text(topology.a)}; router b: {router_text(topology.b)})",
          file=out)
    for host, hs in status.hosts.items():
        print(f"  {host:9} {', '.join(hs.addresses)}   ip netns exec {hs.namespace} ...", file=out)
    for lan, line in status.delay_lines.items():
        print(f"  delay line on LAN {lan}'s link: {delay_text(line)}", file=out)
    print(f"  STUN {lab.stun_url}   TURN {lab.turn_url} (user {lab.turn_username}, "
          f"credential {lab.turn_password})", file=out)
    print(f"remove it with: p2pdiag lab down {lab.lab_id}", file=out)


def render_status(labs: list[dict[str, Any]], out: TextIO) -> None:
    if not labs:
        print("no labs", file=out)
    for entry in labs:
        owner = "detached" if entry["detached"] else (
            f"owned by pid {entry['owner_pid']}" if entry["owner_alive"] else "LEFTOVER (owner gone)")
        st = entry["status"]
        state = "up" if st and st["up"] else "incomplete"
        coturn = "coturn running" if st and st["coturn_running"] else "coturn not running"
        print(f"lab {entry['lab_id']}: {state}, {owner}, {coturn}", file=out)
        if st:
            for lan, router in st["routers"].items():
                print(f"  router {lan}: {', '.join(f'{k}={v}' for k, v in router.items())}", file=out)
            for lan, line in st.get("delay_lines", {}).items():
                print(f"  delay line {lan}: {delay_text(line)}", file=out)
    leftovers = [e["lab_id"] for e in labs if e["leftover"]]
    if leftovers:
        print("remove leftovers with: p2pdiag lab down --all", file=out)


def render_result(result: ScenarioResult, out: TextIO) -> None:
    from p2pdiag.lab.scenario import cut_text, fallback_state

    doc = result.doc
    print(f"scenario {result.scenario.name}: {result.scenario.description}", file=out)
    print(f"verdict ({doc.get('outcome')}, exit {doc.get('exit_code')}): {doc.get('headline')}", file=out)
    print(f"findings: {', '.join(result.codes) or 'none'}", file=out)
    print(f"relayed connection at the end: {fallback_state(result.verdict)}{cut_text(result.verdict)}", file=out)
    for check in result.checks:
        print(f"  {'✓' if check.ok else '✗'} {check.what}", file=out)
    print(f"{'PASS' if result.passed else 'FAIL'} (verdict {result.time_to_verdict_s:.1f} s after the dial started)",
          file=out)
