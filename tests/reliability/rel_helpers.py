"""Shared checks: a specific ConstrainError, a message naming the problem and where, no
internal exception types, bounded wall-clock time."""

from __future__ import annotations

import threading
import time

from constrain.errors import ConstrainError

INTERNAL = (RecursionError, KeyError, IndexError, AttributeError, TypeError, AssertionError, ZeroDivisionError,
            MemoryError, OverflowError, UnicodeError)


def bounded(fn, seconds: float = 20.0):
    """Run ``fn()`` on a daemon thread; fail if it takes longer than ``seconds``.
    Returns ``(value, exception, elapsed)``."""
    box = {}

    def run():
        t0 = time.monotonic()
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - reported to the test
            box["exc"] = e
        box["elapsed"] = time.monotonic() - t0

    th = threading.Thread(target=run, daemon=True)
    th.start()
    th.join(seconds)
    assert not th.is_alive(), f"did not finish within {seconds} s"
    return box.get("value"), box.get("exc"), box["elapsed"]


def raises_clean(fn, cls, *needles, seconds: float = 20.0):
    """``fn()`` raises ``cls`` (a ConstrainError subclass) within ``seconds``; its message
    contains every needle; nothing internal is its type or its cause."""
    value, exc, elapsed = bounded(fn, seconds)
    assert exc is not None, f"expected {cls.__name__}, got a result {value!r}"
    assert isinstance(exc, ConstrainError), f"internal error leaked: {type(exc).__name__}: {exc}"
    assert isinstance(exc, cls), f"expected {cls.__name__}, got {type(exc).__name__}: {exc}"
    assert not isinstance(exc, INTERNAL), f"{type(exc).__name__} is also an internal type"
    cause = exc.__cause__
    assert cause is None or isinstance(cause, ConstrainError), f"internal cause {type(cause).__name__}: {cause}"
    msg = str(exc)
    for n in needles:
        assert n in msg, f"{n!r} not in message {msg!r}"
    return exc
