"""Events to and from their trace-file form: a JSON object with `type` and one key per field.

A trace may come from anywhere (a support ticket, a newer p2pdiag, a hand edit), so reading is
strict: every field is checked against its declared type, and numbers against a range diagnosis
can compute with, before an event is built. A value that would crash or mislead diagnosis later
(a string for a number, a list for an enum, 10**400) stops the load here, naming the field.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable
from typing import Any

from p2pdiag.trace.events.base import EVENT_TYPES, Event

INT_MIN = -(2**63)
INT_MAX = 2**64 - 1  # integers fit in 64 bits, signed or not (Limit.data is a uint64)
SECONDS_MAX = 1e15  # every number field is seconds; sums and differences of these stay finite


class EventDecodeError(ValueError):
    pass


def shown(value: Any, limit: int = 60) -> str:
    """VALUE for an error message, cut at LIMIT characters (a trace's values can be long)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


Convert = Callable[[str, Any], Any]  # (field name, JSON value) -> field value, or EventDecodeError


def _string(name: str, value: Any) -> str:
    if type(value) is str:
        return value
    raise EventDecodeError(f"field {name!r} should be a string")


def _boolean(name: str, value: Any) -> bool:
    if value is True or value is False:
        return value
    raise EventDecodeError(f"field {name!r} should be true or false")


def _integer(name: str, value: Any) -> int:
    if type(value) is int:
        if INT_MIN <= value <= INT_MAX:
            return value
        raise EventDecodeError(f"field {name!r}: integer out of range (more than 64 bits)")
    raise EventDecodeError(f"field {name!r} should be an integer")


def _number(name: str, value: Any) -> float:
    if type(value) is float or type(value) is int:
        if -SECONDS_MAX <= value <= SECONDS_MAX:  # false for NaN too
            return float(value)
        raise EventDecodeError(f"field {name!r}: number out of range (at most {SECONDS_MAX:g} seconds either way)")
    raise EventDecodeError(f"field {name!r} should be a number")


def _converter(hint: Any) -> Convert:
    """The check and conversion for one declared field type (TypeError for a type no event may use)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1 or len(args) != 2:
            raise TypeError(f"event field type {hint!r}: only `X | None` unions are supported")
        convert = _converter(inner[0])
        return lambda name, value: None if value is None else convert(name, value)
    if origin is tuple:
        if len(args) != 2 or args[1] is not Ellipsis:
            raise TypeError(f"event field type {hint!r}: only tuple[X, ...] is supported")
        item = _converter(args[0])

        def sequence(name: str, value: Any) -> tuple[Any, ...]:
            if type(value) is not list:
                raise EventDecodeError(f"field {name!r} should be a list")
            return tuple(item(name, v) for v in value)

        return sequence
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        members = {m.value: m for m in hint}

        def member(name: str, value: Any) -> enum.Enum:
            try:
                return members[value]
            except (KeyError, TypeError):  # TypeError: a list or an object, unhashable
                raise EventDecodeError(f"field {name!r}: {shown(value)} is not one of {list(members)}") from None

        return member
    simple = {str: _string, bool: _boolean, int: _integer, float: _number}.get(hint)
    if simple is None:
        raise TypeError(f"event field type {hint!r} cannot be read from a trace")
    return simple


_Decoder = tuple[tuple[str, Convert, bool], ...]  # per field: name, conversion, required
_DECODERS: dict[type[Event], _Decoder] = {}
_NAMES: dict[type[Event], tuple[str, ...]] = {}


def decoder(cls: type[Event]) -> _Decoder:
    """How CLS is read, worked out once per type."""
    found = _DECODERS.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls)
        found = _DECODERS[cls] = tuple(
            (f.name, _converter(hints[f.name]),
             f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
            for f in dataclasses.fields(cls)
        )
    return found


def event_to_dict(event: Event) -> dict[str, Any]:
    cls = type(event)
    names = _NAMES.get(cls)
    if names is None:
        names = _NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    out: dict[str, Any] = {"type": event.kind}
    for name in names:
        value = getattr(event, name)
        if isinstance(value, enum.Enum):
            value = value.value
        elif isinstance(value, tuple):
            value = list(value)
        out[name] = value
    return out


def event_from_dict(data: dict[str, Any]) -> Event | None:
    """Build an event from its trace-file form; None for a type this version does not know."""
    kind = data.get("type")
    if not isinstance(kind, str):
        raise EventDecodeError("no 'type' key")
    cls = EVENT_TYPES.get(kind)
    if cls is None:
        return None
    kwargs: dict[str, Any] = {}
    for name, convert, required in decoder(cls):
        if name in data:
            kwargs[name] = convert(name, data[name])
        elif required:
            raise EventDecodeError(f"{kind}: missing field {name!r}")
        # else: a field added later, with a default: older traces lack it
    return cls(**kwargs)
