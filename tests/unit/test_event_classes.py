"""How the event classes are made (trace/events/base.py's `event_class`): for every registered
event type, the same behaviour as `@dataclass(frozen=True, slots=True, kw_only=True)` gives a
class of the same fields: equality, hashing, repr, frozenness, slots, keyword-only construction,
defaults, `dataclasses.fields`, `replace` and `asdict`. The reference classes are made here with
dataclasses itself, from each event class's own fields."""

from __future__ import annotations

import dataclasses
import typing

import pytest

import p2pdiag.trace.events as ev
from p2pdiag.trace.events.base import EVENT_TYPES, ConnectionEvent, Event

SAMPLES = {float: 1.5, str: "x", int: 3, bool: True}


def sample(cls: type[Event], variant: int = 0) -> Event:
    """An instance of CLS with every field set: required ones to a value of their type."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
            continue
        tp = hints[f.name]
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        base = args[0] if args else tp
        origin = typing.get_origin(base) or base
        if isinstance(origin, type) and issubclass(origin, ev.base.enum.Enum):
            kwargs[f.name] = list(origin)[variant % len(list(origin))]
        elif origin in (tuple, list):
            kwargs[f.name] = ()
        elif origin is dict:
            kwargs[f.name] = {}
        elif origin in SAMPLES:
            value = SAMPLES[origin]
            kwargs[f.name] = value + variant if origin in (float, int) else value
        else:
            kwargs[f.name] = None
    return cls(**kwargs)


def reference(cls: type[Event]) -> type:
    """CLS's fields in a class made by dataclasses itself, frozen, slotted, keyword-only."""
    spec = [(f.name, f.type, dataclasses.field(default=f.default) if f.default is not dataclasses.MISSING
             else dataclasses.field(default_factory=f.default_factory)
             if f.default_factory is not dataclasses.MISSING else dataclasses.field())
            for f in dataclasses.fields(cls)]
    return dataclasses.make_dataclass(cls.__qualname__, spec, frozen=True, slots=True, kw_only=True)


KINDS = sorted(EVENT_TYPES)


@pytest.mark.parametrize("kind", KINDS)
def test_each_event_class_behaves_as_the_dataclass_of_its_fields(kind):
    cls = EVENT_TYPES[kind]
    ref = reference(cls)
    one, other = sample(cls), sample(cls, 1)
    values = {f.name: getattr(one, f.name) for f in dataclasses.fields(cls)}
    ref_one = ref(**values)
    assert repr(one) == repr(ref_one)
    assert hash(one) == hash(ref_one)
    assert one == cls(**values) and hash(one) == hash(cls(**values))
    assert (one == other) == (ref_one == ref(**{f.name: getattr(other, f.name) for f in dataclasses.fields(cls)}))
    assert one != ref_one  # another class is never equal, as with dataclasses
    assert dataclasses.asdict(one) == dataclasses.asdict(ref_one)
    assert dataclasses.replace(one, t_s=9.0) == cls(**{**values, "t_s": 9.0})
    assert [f.name for f in dataclasses.fields(cls)] == [f.name for f in dataclasses.fields(ref)]
    assert cls.__dataclass_params__.frozen and "__slots__" in cls.__dict__ and not hasattr(one, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        one.t_s = 2.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del one.t_s  # type: ignore[misc]
    with pytest.raises(TypeError):
        cls(1.0, **{k: v for k, v in values.items() if k != "t_s"})  # keyword-only


def test_equality_and_hash_follow_every_field_in_order():
    base = ConnectionEvent(t_s=1.0, connection_id="c1")
    assert base == ConnectionEvent(t_s=1.0, connection_id="c1")
    assert base != ConnectionEvent(t_s=1.0, connection_id="c2")
    assert base != ConnectionEvent(t_s=2.0, connection_id="c1")
    assert hash(base) == hash((1.0, "c1"))
    assert repr(base) == "ConnectionEvent(t_s=1.0, connection_id='c1')"
    assert Event(t_s=1.0) == Event(t_s=1.0) and hash(Event(t_s=1.0)) == hash((1.0,))
    assert base != Event(t_s=1.0)
    assert {base, ConnectionEvent(t_s=1.0, connection_id="c1")} == {base}
