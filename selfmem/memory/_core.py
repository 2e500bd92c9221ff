"""The state every ``Memory`` method shares, and the one guard each public call goes through.

:class:`MemoryCore` holds a handle's store, views, config and derived parts; :func:`guarded` wraps a
public method in "lock, check the handle is open (and writable), swap in finished refits". The
method groups (:mod:`._inspect`, :mod:`._graph_api`, :mod:`._transfer`) and the facade
(:mod:`._memory`) build on it.
"""

from __future__ import annotations

import contextvars
import functools
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, Self, TypeVar

import numpy as np

from .._config import MemoryConfig
from .._errors import (CorruptMemoryError, MemoryClosedError, MemoryForkedError, ReadOnlyError, SelfmemError,
                       StorageError)
from .._interrupt import deferred_interrupts
from .._progress import bar, show_progress
from ..retrieval._views import Views
from ..store import Store, driver_errors, refused, unreachable
from ._part_graph import GraphPart
from ._part_keywords import KeywordPart
from ._part_topics import TopicPart
from ._part_vectors import VectorPart
from ._part_readview import ReadViewPart
from . import _handles
from ._parts import AddBatch, Part, PartContext, raw_vectors

__all__ = ["MemoryCore", "guarded", "database_errors", "AUTO_PROGRESS"]

AUTO_PROGRESS = 512
"""Work (records) from which bars show by default on a terminal."""

P = ParamSpec("P")
R = TypeVar("R")
M = TypeVar("M", bound="MemoryCore")


class MemoryCore:
    """A memory handle's shared state (see :class:`selfmem.Memory` for the public API)."""

    directory: Path
    config: MemoryConfig
    read_only: bool
    _store: Store | None
    _ctx: PartContext
    _views: Views
    _vectors: VectorPart
    _keywords: KeywordPart
    _topics: TopicPart
    _graph: GraphPart
    _readview: ReadViewPart
    _parts: list[Part]
    _private: tuple[Path, ...]
    _claim: str | None
    _reembedded: set[str]
    _progress: bool | None
    _lock: threading.RLock
    _session: contextvars.ContextVar[str | None]
    _seen: int  # the store's last change this handle has caught up with (a shared store)
    _pid: int  # the process that opened the handle (a forked child must not use it)
    add_many: Callable[..., list[int]]  # defined by the facade; the import uses it
    close: Callable[[], None]  # defined by the facade

    @property
    def closed(self) -> bool:
        """True after ``close()``."""
        return getattr(self, "_store", None) is None

    def __del__(self) -> None:
        """A handle dropped while open is closed as ``close()`` would (its refits finished, files saved)."""
        if getattr(self, "_store", None) is not None and getattr(self, "_pid", None) == os.getpid():
            _handles.dropped(self)

    def _same_process(self) -> None:
        if self._pid != os.getpid():
            raise MemoryForkedError(
                f"this Memory of {self.directory} was opened in process {self._pid} and cannot be used in process "
                f"{os.getpid()} (after a fork): open a new handle in each worker, e.g. Memory(path, read_only=True) "
                "for readers, or share one memory through memctl serve or a PostgreSQL store (README, 'Many "
                "processes')")

    def __len__(self) -> int:
        self._same_process()
        with self._lock:
            return self._live().count()

    def __repr__(self) -> str:
        return f"Memory({str(self.directory)!r}, {'closed' if self.closed else f'{len(self)} records'})"

    def _close_store(self) -> None:
        for part in getattr(self, "_parts", ()):
            part.stop()  # never close the store under a thread (refit, publisher) that still reads it
        _handles.forget(self)
        store, self._store = self._store, None
        try:
            if store is not None:
                store.close()  # a damaged block or a refused checkpoint raises; the rest is released anyway
        finally:
            _handles.release(self._claim, self)
            self._claim = None
            ctx = getattr(self, "_ctx", None)
            if ctx is not None:
                ctx.cleanup()
            for private in self._private:
                shutil.rmtree(private, ignore_errors=True)
            self._private = ()

    def _save_now(self) -> bool:
        """Save every part's current state without waiting for a running refit (the exit path after Ctrl-C:
        the parts agree with the store, whose every acknowledged record is committed). Closes the store and
        returns True when no refit runs; else leaves it open under the refit (the process is about to end
        with ``os._exit``, which never tears the database down under a thread)."""
        with self._lock:
            if self._store is None:
                return True
            for part in self._parts:
                part.save()
            if all(part.refit.finished for part in self._parts):
                self._close_store()
                return True
            return False

    def _publish_now(self) -> None:
        """Publish the read view now if anything changed since its last publication (for a reader in this process)."""
        with self._lock:
            if self._store is not None:
                self._readview.publish_pending()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is KeyboardInterrupt and not all(part.refit.finished for part in getattr(self, "_parts", ())):
            return  # Ctrl-C: do not make the user wait for a background refit here; it is closed at exit
        self.close()

    def _live(self) -> Store:
        self._same_process()
        if self._store is None:
            raise MemoryClosedError("this Memory is closed; open it again with Memory(path)")
        return self._store

    def _writable(self) -> Store:
        store = self._live()
        if self.read_only:
            raise ReadOnlyError("this Memory was opened with read_only=True; open it without read_only to write")
        return store

    def _poll(self) -> Store:
        """The live store, after catching up with other processes' commits (a shared store) and swapping in
        finished background refits (and starting what they make due)."""
        store = self._live()
        caught = store.shared and self._catch_up(store)
        if any([part.poll() for part in self._parts]) or caught:  # others' records may make a refit due here too
            self._maintain()
        return store

    def _catch_up(self, store: Store) -> bool:
        """Tell every part what other writers added and deleted since the last look (their order kept); True
        when there was anything."""
        self._seen, added, deleted = store.changes_since(self._seen)
        if not added and not deleted:  # the usual case for a search: no O(n) look at the index's ids
            return False
        if deleted:
            for part in self._parts:
                part.on_delete(np.asarray(deleted, dtype=np.int64))
        added_ids = np.asarray(added, dtype=np.int64)
        lacking = {part.name: part.lacking(added_ids) for part in self._parts}  # each part by what it holds: a
        fresh = np.unique(np.concatenate([added_ids[:0], *lacking.values()]))  # refit may have brought some in
        if not len(fresh):
            return True
        with store.read_transaction():  # records and vectors of one committed state
            records = store.get(fresh)
            ids, raw = raw_vectors(store, self._views, fresh)
        batch = AddBatch(ids, tuple(records[int(i)].text for i in ids), raw, self._views.index_vectors(raw),
                         self._ctx.space(), ())
        for part in self._parts:
            part.on_add(batch.only(lacking[part.name]))
        return True

    def _maintain(self) -> None:
        # parts refitting inline one after another (background=False) read the store's index vectors once
        with self._ctx.sharing():
            for part in self._parts:
                part.maintain()

    @contextmanager
    def _bar(self, total: int, desc: str, unit: str, progress: bool | None) -> Iterator[Any]:
        """The progress bar of long work (shown per ``progress``, else the handle's setting, else on a TTY)."""
        enabled = show_progress(progress if progress is not None else self._progress, total, AUTO_PROGRESS)
        with bar(total=total, desc=desc, unit=unit, enabled=enabled) as shown:
            yield shown

    def _repair(self, names: set[str], *, index_only: bool) -> list[str]:
        """Rebuild the parts named ``names``, in dependency order (``memctl doctor --repair``); the vector
        part rebuilds only its index when ``index_only``. Returns the names rebuilt."""
        done = []
        with self._lock:
            self._writable()
            for part in self._parts:
                if part.name not in names:
                    continue
                if isinstance(part, VectorPart) and index_only:
                    part.rebuild_index()
                else:
                    part.rebuild()
                done.append(part.name)
        return done


@contextmanager
def database_errors(directory: Path) -> Iterator[None]:
    """Turn an error the database or the file system raised itself into a StorageError when the file system
    refused (read-only, full, no permission), else into a CorruptMemoryError (a damaged block), each saying
    what to do."""
    try:
        yield
    except SelfmemError:
        raise
    except driver_errors() + (OSError,) as exc:
        if unreachable(exc):
            raise StorageError(f"the database server of {directory} could not be reached or closed the connection "
                               f"({type(exc).__name__}); check that it runs, then retry (the failed call wrote "
                               "nothing)") from exc
        if refused(exc):
            raise StorageError(f"the file system refused a write to {directory} ({str(exc)[:160]}); free space or "
                               "make the directory writable, then retry (the failed call wrote nothing)") from exc
        raise CorruptMemoryError(f"{directory / 'memory.duckdb'} could not be read ({type(exc).__name__}: "
                                 f"{str(exc)[:160]}); run memctl doctor {directory}, and if it reports damage restore "
                                 "memory.duckdb from a backup (every other file is derived from it)") from exc


def guarded(*, write: bool = False, poll: bool = True
            ) -> Callable[[Callable[Concatenate[M, P], R]], Callable[Concatenate[M, P], R]]:
    """Decorate a public method: under the handle's lock, with Ctrl-C held until the call has committed or
    rolled back (see ``selfmem._interrupt``), after checking it is open (``write``: and writable), and
    (``poll``) after swapping in finished background refits."""

    def wrap(fn: Callable[Concatenate[M, P], R]) -> Callable[Concatenate[M, P], R]:
        @functools.wraps(fn)
        def call(self: M, /, *args: P.args, **kwargs: P.kwargs) -> R:
            self._same_process()  # before the lock: a forked child may inherit it held by a thread it lacks
            with self._lock, deferred_interrupts():  # Ctrl-C lands once the call has committed or rolled back
                if write:
                    self._writable()
                with database_errors(self.directory):
                    if poll:
                        self._poll()
                    else:
                        self._live()
                    return fn(self, *args, **kwargs)

        return call

    return wrap
