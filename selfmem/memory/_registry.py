"""The registry of open handles in this process: one writer per directory, closing at exit and after a fork,
and opening a handle's store.

Its entries are :class:`~selfmem.memory._state.MemoryState` objects (a handle's state; the ``Memory`` facade
registers its state and tells this module when it is dropped).

DuckDB's file lock keeps other processes out of a store, not other handles of this process: two
writable handles in one process would each miss the other's adds, so a second one is refused here.
A reader in the writer's own process asks that writer to publish first, so it sees every commit.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import sys
import threading
import weakref
from collections.abc import Callable, Set as AbstractSet
from pathlib import Path
from typing import TYPE_CHECKING

from .._config import derived_schema
from .._errors import MemoryLockedError
from ..store import DuckDBStore, Store, open_postgres, snapshot
from ..store._readview import VIEW_DIR, open_published

if TYPE_CHECKING:  # (the state module imports this one)
    from .._config import MemoryConfig
    from ._state import MemoryState

__all__ = ["claim", "release", "writer_of", "open_handle_store", "Opened", "track", "forget", "dropped", "close_all"]

_writers: dict[str, weakref.ref[MemoryState]] = {}
_lock = threading.Lock()
_open: weakref.WeakSet[MemoryState] = weakref.WeakSet()  # every open handle, closed at interpreter exit
_orphans: list[MemoryState] = []  # handles dropped where they could not be closed at once (kept alive until exit)
_EXIT_INTERRUPTS = 3
"""Ctrl-C presses that abandon the closing at exit (the store is durable; derived files are rebuilt on open)."""


def track(handle: MemoryState) -> None:
    """Close ``handle`` at interpreter exit if it is still open then (e.g. after Ctrl-C in a script), so
    no refit thread is still inside the database when the interpreter tears down."""
    _open.add(handle)


def forget(handle: MemoryState) -> None:
    _open.discard(handle)


def _ours() -> bool:
    """True in a thread of selfmem's own (a refit or the publisher): a handle must not be closed there."""
    return threading.current_thread().name.startswith("selfmem-")


def dropped(handle: MemoryState) -> None:
    """``handle`` was garbage-collected while open. Close it now (save its files, close its store) when no
    refit runs; else keep it alive without blocking the caller, until its directory is opened again in this
    process, or the interpreter exits (:func:`close_all` then waits for the refit and closes it)."""
    if _ours() or not all(part.refit.finished for part in handle.parts):
        _orphans.append(handle)  # resurrected: closed later, never inside one of our threads or mid-refit
        return
    try:
        handle.close()
    except KeyboardInterrupt:  # Ctrl-C while it closed: it stays open and is closed at exit
        _orphans.append(handle)
    except BaseException as exc:  # nothing can be raised from a finaliser: say what failed
        _say(handle, exc)


def _say(handle: MemoryState, exc: BaseException) -> None:
    sys.stderr.write(f"selfmem: closing {getattr(handle, 'directory', '?')} failed: {type(exc).__name__}: {exc}\n")


def close_all(*, wait: bool = True) -> None:
    """Close every handle still open in this process: at interpreter exit, and before ``memctl`` ends with
    ``os._exit`` (``wait=False`` after Ctrl-C: handles whose refits still run are saved as they are, not
    waited for; the process must then end with ``os._exit``).

    Ctrl-C does not leave a handle open here: closing goes on, and the third press saves every handle's
    current state and ends the process at once with status 130 (the store holds every acknowledged
    record and the saved files agree with it), so no refit thread is ever inside a library when the
    interpreter tears down."""
    presses = 0
    while True:
        handles = [h for h in (*list(_open), *_orphans) if not h.closed]
        if not handles:
            _orphans.clear()
            return
        try:
            for handle in handles:
                try:
                    if wait:
                        handle.close()
                    else:
                        handle.save_now()
                except KeyboardInterrupt:
                    raise
                except BaseException as exc:  # the interpreter is exiting: say what failed, close the others
                    _say(handle, exc)
                    handle.close_store()
            if not wait:
                return
        except KeyboardInterrupt:
            presses += 1
            if presses >= _EXIT_INTERRUPTS:
                close_all(wait=False)
                sys.stderr.write("selfmem: interrupted while closing at exit; the memory was saved as it was\n")
                sys.stderr.flush()
                os._exit(130)
            sys.stderr.write("selfmem: finishing background work before exit (Ctrl-C "
                             f"{_EXIT_INTERRUPTS - presses} more time(s) to stop it)\n")


atexit.register(close_all)


def _after_fork_in_child() -> None:
    """In a forked child every inherited handle is the parent's: its methods raise MemoryForkedError (they
    check the process id), and its store is kept referenced for the child's whole life, so that neither
    garbage collection nor the child's exit closes (and checkpoints) a database the parent still writes."""
    global _lock
    _lock = threading.Lock()  # another thread of the parent may have held it at the fork
    for handle in list(_open) + _orphans:
        store = getattr(handle, "store", None)
        if store is not None:  # one reference more than anyone drops: the object outlives the child's teardown
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(store))
    _open.clear()
    _orphans.clear()
    _writers.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _writer(claim_key: str) -> MemoryState | None:
    holder = _writers.get(claim_key)
    other = holder() if holder is not None else None
    return other if other is not None and not other.closed else None


def writer_of(directory: str | os.PathLike[str]) -> MemoryState | None:
    """The state of the open writable handle of ``directory`` in this process, or None."""
    with _lock:
        return _writer(os.path.realpath(directory))


def claim(directory: Path, handle: MemoryState) -> str:
    """Register ``handle`` as the writer of ``directory``; MemoryLockedError when another handle is. A handle
    of the directory that was dropped while a refit ran is closed first (it waits for the refit)."""
    key = os.path.realpath(directory)
    for orphan in [h for h in _orphans if os.path.realpath(h.directory) == key]:
        _orphans.remove(orphan)
        orphan.close()
    with _lock:
        if _writer(key) is not None:
            raise MemoryLockedError(f"{directory} is already open for writing in this process; use that Memory "
                                    "object, close it first, or open this one with read_only=True")
        _writers[key] = weakref.ref(handle)  # a handle dropped without close() frees the claim
    return key


def release(key: str | None, handle: MemoryState) -> None:
    """Drop ``handle``'s claim (no-op when it holds none)."""
    if key is None:
        return
    with _lock:
        holder = _writers.get(key)
        if holder is not None and holder() is handle:
            del _writers[key]


def schema_name(directory: Path) -> str:
    """The default PostgreSQL schema of the memory whose caches live in ``directory``: ``selfmem_``, its name
    and a digest of its path (processes that share one memory set ``MemoryConfig.store_schema``)."""
    return derived_schema("selfmem", directory.resolve().name or "memory", str(directory.resolve()))


class Opened:
    """A handle's store and where it reads derived files from.

    Attributes
    ----------
    store : Store
    directory : Path
        Where the derived files are read (the memory directory, or a reader's private copy).
    private : tuple of Path
        Directories to remove at close (a reader's copy or its pinned view files).
    """

    def __init__(self, store: Store, directory: Path, private: tuple[Path, ...] = ()) -> None:
        self.store, self.directory, self.private = store, directory, private


def open_handle_store(directory: Path, store_file: str, read_only: bool, own_files: AbstractSet[str],
                      publish: Callable[[MemoryState], None], config: MemoryConfig | None = None) -> Opened:
    """Open the store of a new handle: on PostgreSQL the memory's schema (readers too: no lock to avoid);
    on DuckDB the writer's file, or for a reader the published read view (after ``publish(writer)`` when
    the writer is in this process), or, without a view, a private copy."""
    if config is not None and config.store != "duckdb":
        return Opened(open_postgres(config.store, config.store_schema or schema_name(directory),
                                    read_only=read_only), directory)
    if not read_only:
        return Opened(DuckDBStore(directory / store_file), directory)
    writer = writer_of(directory)
    if writer is not None:  # the writer is in this process: a reader sees everything it committed
        publish(writer)
    opened = open_published(directory)
    if opened is not None:  # the writer's published view: no lock, no copy (see store._readview)
        store, pinned = opened
        return Opened(store, directory, () if pinned is None else (pinned,))
    copy, store = snapshot(directory, store_file, own_files - {VIEW_DIR})  # a memory from an older selfmem
    return Opened(store, copy, (copy,))
