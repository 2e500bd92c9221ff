"""Ctrl-C at a safe point: hold SIGINT while a call changes state, deliver it once the state is whole.

A ``KeyboardInterrupt`` raised inside DuckDB, FAISS or a half-done swap of a derived part leaves raw
library errors ("Query interrupted", "cannot start a transaction within a transaction") or a handle
whose parts disagree with its store. So every public call of a memory runs inside
:func:`deferred_interrupts`: a SIGINT that arrives meanwhile is noted, and raised as
``KeyboardInterrupt`` (or handed to the handler that was installed before) when the call has
committed or rolled back. Work that writes nothing and may take long (embedding texts, waiting for a
background refit) runs inside :func:`interruptible`, where Ctrl-C acts at once; :func:`check_interrupt`
is a safe point between steps of a long call.

Signals reach only the main thread; elsewhere these are no-ops.

>>> with deferred_interrupts():
...     pass
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["deferred_interrupts", "interruptible", "check_interrupt"]

_depth = 0  # nesting of deferred_interrupts in the main thread
_pending = False  # a SIGINT arrived while held
_Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None
_saved: _Handler = None  # the handler installed before the outermost block


def _main() -> bool:
    return threading.current_thread() is threading.main_thread()


def _hold(signum: int, frame: FrameType | None) -> None:
    global _pending
    _pending = True


def _deliver(handler: _Handler) -> None:
    """Act on a held SIGINT as ``handler`` (the one installed before) would have."""
    if handler is signal.SIG_IGN:
        return
    if callable(handler) and handler is not signal.default_int_handler:
        handler(signal.SIGINT, None)
        return
    raise KeyboardInterrupt


@contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold SIGINT for the block (nests); raise it as KeyboardInterrupt when the outermost block ends."""
    global _depth, _pending, _saved
    if not _main():
        yield
        return
    if _depth:
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
        return
    try:
        previous = signal.signal(signal.SIGINT, _hold)
    except (ValueError, OSError):  # not the main interpreter: signals are not ours to handle
        yield
        return
    _saved, _depth, _pending = previous, 1, False
    try:
        yield
    finally:
        _depth = 0
        signal.signal(signal.SIGINT, previous)
        if _pending:
            _pending = False
            _deliver(previous)


@contextmanager
def interruptible() -> Iterator[None]:
    """Inside :func:`deferred_interrupts`, let Ctrl-C act at once during the block (for work that writes
    nothing); a SIGINT held before the block is raised on entry."""
    global _pending
    if not (_depth and _main()):
        yield
        return
    check_interrupt()
    signal.signal(signal.SIGINT, _saved)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, _hold)


def check_interrupt() -> None:
    """A safe point inside :func:`deferred_interrupts`: deliver a held SIGINT now."""
    global _pending
    if _depth and _pending and _main():
        _pending = False
        _deliver(_saved)
