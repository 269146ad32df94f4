"""Named timeouts for every wait. `--step-timeout NAME=SECONDS` overrides one; `--timeout` bounds the run."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace


@dataclass(frozen=True, slots=True)
class StepTimeouts:
    relay_connect: float = 10.0  # TCP/WebSocket + Noise + muxer to the relay
    identify: float = 5.0  # one identify exchange
    hop: float = 10.0  # HOP CONNECT until the relay's STATUS
    reserve: float = 10.0  # RESERVE until the relay's STATUS
    secure: float = 10.0  # Noise + muxer with the peer over the circuit
    ping: float = 5.0  # one ping round trip
    stop: float = 10.0  # reading a STOP CONNECT from the relay
    transfer: float = 15.0  # relay-check: one throughput push, or one limit measurement's data echo

    @classmethod
    def names(cls) -> list[str]:
        return [f.name.replace("_", "-") for f in fields(cls)]

    def with_overrides(self, overrides: dict[str, float]) -> StepTimeouts:
        return replace(self, **{k.replace("-", "_"): v for k, v in overrides.items()})

    def as_dict(self) -> dict[str, float]:
        return {f.name.replace("_", "-"): getattr(self, f.name) for f in fields(self)}


def parse_override(text: str) -> tuple[str, float]:
    """'hop=3' -> ('hop', 3.0); ValueError with a message a person can act on."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep:
        raise ValueError(f"--step-timeout takes NAME=SECONDS, got {text!r}")
    if name not in StepTimeouts.names():
        raise ValueError(f"--step-timeout: unknown step {name!r}; steps are {', '.join(StepTimeouts.names())}")
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"--step-timeout {name}: {value!r} is not a number of seconds") from None
    if not 0 < seconds <= 3600:
        raise ValueError(f"--step-timeout {name}: {seconds:g} s is outside 0 to 3600 s")
    return name, seconds
