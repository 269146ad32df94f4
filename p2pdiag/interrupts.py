"""Ctrl-C and SIGTERM from the first instant of a run to its end. The standard library only.

`main` installs the handler before it imports anything else, so a signal is never a
KeyboardInterrupt in the middle of an import. The handler only notes the signal until a command
says what to do with it:

- a command that writes a trace calls `watch(on_signal, on_exit)` once the trace's header is
  written: `on_signal` runs for the first signal (now, if one already came: the run records
  `run.interrupted` and stops), `on_exit` runs for the second, just before the process exits 130
  at once (it makes sure `run.interrupted` is in the trace);
- any other command calls `release()`: the usual handlers come back, and a signal that came
  meanwhile is delivered as they would have had it (KeyboardInterrupt, or SIGTERM's exit).
"""

from __future__ import annotations

import _signal as signal  # the C module: `signal` builds enums on import, tens of ms before a handler is in place
import contextlib
import os
from collections.abc import Callable
from typing import Any

EXIT_INTERRUPTED = 130
SIGNALS = (signal.SIGINT, signal.SIGTERM)

_received: list[int] = []
_previous: dict[int, Any] = {}
_on_signal: Callable[[], None] | None = None
_on_exit: Callable[[], None] | None = None
_acted: list[bool] = []  # the first signal's action was taken (it is taken once)


def install() -> None:
    """Note SIGINT and SIGTERM from now on (idempotent)."""
    for sig in SIGNALS:
        current = signal.getsignal(sig)
        if current is not _handler:
            _previous[sig] = current
            signal.signal(sig, _handler)


def installed() -> bool:
    return signal.getsignal(signal.SIGINT) is _handler


def received() -> int:
    """How many signals came so far."""
    return len(_received)


def _exit_now() -> None:
    on_exit = _on_exit
    if on_exit is not None:
        with contextlib.suppress(BaseException):  # interrupted mid-write: what is in the file stays
            on_exit()
    os._exit(EXIT_INTERRUPTED)


def _handler(signum: int, frame: Any) -> None:
    _received.append(signum)
    if len(_received) >= 2:
        if _on_exit is not None:
            _exit_now()
        return  # no trace open yet: `watch` exits as soon as it is
    if _on_signal is not None:
        _acted.append(True)
        _on_signal()


def pending() -> bool:
    """A signal came and no one acted on it yet."""
    return bool(_received) and not _acted


def watch(on_signal: Callable[[], None] | None, on_exit: Callable[[], None] | None = None) -> None:
    """From now on the first signal calls ON_SIGNAL and the second ON_EXIT, then exits 130.

    A signal that came before and was not yet acted on is acted on here and now; the first
    signal's action is taken once, whoever is watching when it comes. `watch(None)` notes only."""
    global _on_signal, _on_exit  # noqa: PLW0603  (signal handlers are per process: their state is the module's)
    _on_signal = on_signal
    if on_exit is not None:
        _on_exit = on_exit
    if len(_received) >= 2 and _on_exit is not None:
        _exit_now()
    if _received and on_signal is not None and not _acted:
        _acted.append(True)
        on_signal()


def release() -> None:
    """Give SIGINT and SIGTERM back to their usual handlers; deliver a signal that came meanwhile."""
    global _on_signal, _on_exit  # noqa: PLW0603  (as in watch)
    _on_signal = _on_exit = None
    for sig, previous in _previous.items():
        signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
    _previous.clear()
    if _received:
        signum = _received[0]
        _received.clear()
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        os.kill(os.getpid(), signum)
