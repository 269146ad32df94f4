"""The fast path of reading a trace line: orjson for the JSON, and per event type a decoder generated
from its declared fields, each as strict as `codec.event_from_dict`.

Nothing here has an error message of its own: a line the fast path does not accept, for whatever
reason, is read again by the slow path (`trace/file.py`: the standard library's parser, then
`codec.event_from_dict`), which reads it or raises the error it always raised. So the fast path
changes how long a trace takes to read, never what a line reads into or what is refused
(tests/unit/test_trace_decode.py holds the two to each other).
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable
from typing import Any

import orjson

from p2pdiag.trace.events import EVENT_TYPES, Event
from p2pdiag.trace.events.codec import INT_MAX, INT_MIN, SECONDS_MAX

# orjson reads nesting far deeper than the standard library's recursion limit lets it: a line with
# more than MAX_BRACKETS brackets (maybe deep) goes to the standard library.
MAX_BRACKETS = 200
FAIL = object()  # the fast path did not read this line: read it as the standard library and codec do


def fast_event(line: bytes) -> Event | object | None:
    """The event on LINE (None: a type this version does not know), or FAIL when the fast path does
    not accept it: not JSON to orjson, not an object, maybe nested deeply, or a field that fails its
    check. Where orjson reads a value otherwise than the standard library (an integer beyond 64 bits
    becomes a float), the event's check fails for that value (no field accepts it either way), or the
    value is in a key no event reads; so an event read here is the event the slow path reads."""
    if len(line) > MAX_BRACKETS and line.count(b"[") + line.count(b"{") > MAX_BRACKETS:  # a shorter line has fewer
        return FAIL
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError:
        return FAIL
    if type(data) is not dict:
        return FAIL
    kind = data.get("type")
    if type(kind) is not str:
        return FAIL
    decode = _DECODERS.get(kind)
    return decode(data) if decode is not None else None


class _Gen:
    """Python source that checks and converts one field's JSON value, or returns the slow decoder's answer."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names: dict[str, Any] = {}
        self.n = 0

    def const(self, value: Any) -> str:
        self.n += 1
        name = f"_k{self.n}"
        self.names[name] = value
        return name

    def var(self) -> str:
        self.n += 1
        return f"_v{self.n}"

    def emit(self, indent: int, text: str) -> None:
        self.lines.append("    " * indent + text)

    def value(self, hint: Any, src: str, indent: int) -> None:
        """Lines that check SRC against HINT and leave the field's value in SRC (or return slow)."""
        slow = "return _FAIL"
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if origin in (typing.Union, types.UnionType):
            inner = [a for a in args if a is not type(None)]
            if len(inner) != 1 or len(args) != 2:
                raise TypeError(hint)
            self.emit(indent, f"if {src} is not None:")
            self.value(inner[0], src, indent + 1)
            return
        if origin is tuple:
            if len(args) != 2 or args[1] is not Ellipsis:
                raise TypeError(hint)
            items, item = self.var(), self.var()
            self.emit(indent, f"if type({src}) is not list: {slow}")
            if args[0] in (str, bool, int):  # checked, not converted: the list's items are the tuple's
                self.emit(indent, f"for {item} in {src}:")
                self.value(args[0], item, indent + 1)
                self.emit(indent, f"{src} = tuple({src})")
                return
            self.emit(indent, f"{items} = []")
            self.emit(indent, f"for {item} in {src}:")
            self.value(args[0], item, indent + 1)
            self.emit(indent + 1, f"{items}.append({item})")
            self.emit(indent, f"{src} = tuple({items})")
            return
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            members = self.const({m.value: m for m in hint})
            self.emit(indent, "try:")
            self.emit(indent + 1, f"{src} = {members}[{src}]")
            self.emit(indent, f"except (KeyError, TypeError): {slow}")
            return
        if hint is str:
            self.emit(indent, f"if type({src}) is not str: {slow}")
        elif hint is bool:
            self.emit(indent, f"if {src} is not True and {src} is not False: {slow}")
        elif hint is int:
            self.emit(indent, f"if type({src}) is not int or not ({INT_MIN} <= {src} <= {INT_MAX}): {slow}")
        elif hint is float:  # a float is kept as it is, an int converted
            self.emit(indent, f"if type({src}) is float:")
            self.emit(indent + 1, f"if not ({-SECONDS_MAX!r} <= {src} <= {SECONDS_MAX!r}): {slow}")
            self.emit(indent, f"elif type({src}) is int:")
            self.emit(indent + 1, f"if not ({-SECONDS_MAX!r} <= {src} <= {SECONDS_MAX!r}): {slow}")
            self.emit(indent + 1, f"{src} = float({src})")
            self.emit(indent, f"else: {slow}")
        else:
            raise TypeError(hint)


def _compile(cls: type[Event]) -> Callable[[dict[str, Any]], Event | object]:
    """A decoder for CLS alone: every field checked as codec's converters check it, FAIL for anything
    it does not accept (a missing field, a wrong type, a value out of range). The event is built as
    the dataclass's own __init__ builds it (each slot set), without its keyword parsing."""
    hints = typing.get_type_hints(cls)
    gen = _Gen()
    missing = gen.const(object())
    args = []
    fields = dataclasses.fields(cls)
    required = [f for f in fields if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    names = {f.name: gen.var() for f in fields}
    if required:  # all looked up at once: a missing one is a KeyError
        gen.emit(1, "try:")
        for f in required:
            gen.emit(2, f"{names[f.name]} = d[{f.name!r}]")
        gen.emit(1, "except KeyError: return _FAIL")
    for f in fields:
        v = names[f.name]
        if f in required:
            gen.value(hints[f.name], v, 1)
        else:
            default = (gen.const(f.default) if f.default is not dataclasses.MISSING
                       else f"{gen.const(f.default_factory)}()")
            gen.emit(1, f"{v} = d.get({f.name!r}, {missing})")
            gen.emit(1, f"if {v} is {missing}: {v} = {default}")
            gen.emit(1, "else:")
            gen.value(hints[f.name], v, 2)
        args.append((f.name, v))
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has a __post_init__")
    gen.emit(1, "e = _new(_cls)")
    for name, v in args:
        gen.emit(1, f"{gen.const(getattr(cls, name).__set__)}(e, {v})")
    source = "def decode(d):\n" + "\n".join(gen.lines) + "\n    return e\n"
    scope: dict[str, Any] = {"_cls": cls, "_FAIL": FAIL, "_new": object.__new__, **gen.names}
    exec(compile(source, f"<decoder of {cls.__name__}>", "exec"), scope)  # our own generated source
    return scope["decode"]


def _fail(data: dict[str, Any]) -> object:
    return FAIL


def _decoders() -> dict[str, Callable[[dict[str, Any]], Event | object]]:
    out = {}
    for kind, cls in EVENT_TYPES.items():
        try:
            out[kind] = _compile(cls)
        except TypeError:  # a field type the generator does not know: the slow path reads it
            out[kind] = _fail
    return out


_DECODERS = _decoders()
