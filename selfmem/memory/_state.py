"""One open handle's state and lifecycle, and the guard every public call of ``Memory`` goes through.

:class:`MemoryState` owns what a handle holds (its store, views, config and derived parts, its lock and
session) and the steps every service shares: check the handle is open (and writable), catch up with
other writers and swap in finished refits (:meth:`~MemoryState.poll`), keep the parts due
(:meth:`~MemoryState.maintain`), close. The services (:mod:`._writing`, :mod:`._searching`,
:mod:`._inspection`, :mod:`._graph_queries`, :mod:`._transfer`, :mod:`._maintenance`) each take it;
the facade (:mod:`._memory`) wraps every public call in :func:`guarded`.
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
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import numpy as np

from .._config import MemoryConfig
from .._errors import MemoryClosedError, MemoryForkedError, ReadOnlyError, SelfmemError, StorageError, storage_errors
from .._interrupt import deferred_interrupts
from .._progress import bar, show_progress
from ..retrieval._views import Views
from ..store import Store, database_errors
from . import _registry
from ._opening import CONFIG_FILE, STORE_FILE, check_fingerprints, discard_new, reembed_roles
from ._part_checkpoint import CheckpointPart
from ._part_graph import GraphPart
from ._part_keywords import KeywordPart
from ._part_readview import ReadViewPart
from ._part_sentences import SentencePart
from ._part_topics import TopicPart
from ._part_vectors import VectorPart
from ._parts import AddBatch, Part, PartContext, raw_vectors

__all__ = ["MemoryState", "guarded", "AUTO_PROGRESS", "OWN_FILES"]

AUTO_PROGRESS = 512
"""Work (records) from which bars show by default on a terminal."""

PART_TYPES = (VectorPart, KeywordPart, SentencePart, TopicPart, GraphPart, CheckpointPart, ReadViewPart)
OWN_FILES = frozenset({STORE_FILE, STORE_FILE + ".wal", CONFIG_FILE, *(f for part in PART_TYPES for f in part.files)})
"""The files a memory directory may hold (anything else makes it a foreign directory)."""


class MemoryState:
    """One handle's state: its store, views, derived parts, lock and session; opened by :meth:`open`.

    Parameters
    ----------
    directory : Path
    config : MemoryConfig
    read_only : bool
    progress : bool or None
        The handle's bar setting (None: bars on a terminal for long work).
    """

    def __init__(self, directory: Path, config: MemoryConfig, *, read_only: bool, progress: bool | None) -> None:
        self.directory, self.config, self.read_only, self.progress = directory, config, read_only, progress
        self.store: Store | None = None
        self.pid = os.getpid()  # the process that opened the handle (a forked child must not use it)
        self.lock = threading.RLock()
        self.session: contextvars.ContextVar[str | None] = contextvars.ContextVar(
            f"selfmem-session-{id(self)}", default=None)
        self.private: tuple[Path, ...] = ()  # directories of this handle's own (a reader's snapshot copy)
        self.claim: str | None = None  # the writer's claim on its directory in this process
        self.reembedded: set[str] = set()
        self.seen = 0  # the store's last change this handle has caught up with (a shared store)
        self.ctx: PartContext | None = None
        self.parts: list[Part] = []

    # -- opening -----------------------------------------------------------------
    def open(self, views: Views, reembed: bool) -> None:
        """Open the store, check or re-embed its vectors, open the derived parts (dependency order). A
        refused open leaves nothing behind: the store closed and a directory it created removed."""
        directory, read_only, config = self.directory, self.read_only, self.config
        made = not directory.exists()
        fresh = not read_only and config.store == "duckdb" and not (directory / STORE_FILE).exists()
        if not read_only:
            with storage_errors(f"create the memory directory {directory}"):
                directory.mkdir(parents=True, exist_ok=True)
            self.claim = _registry.claim(directory, self)
        try:
            opened = _registry.open_handle_store(directory, STORE_FILE, read_only, OWN_FILES,
                                                 lambda writer: writer.publish_now(), config)
            self.store, self.private = opened.store, opened.private
            stale = check_fingerprints(opened.store, views, allow=reembed and not read_only, write=not read_only)
            if not read_only:
                with storage_errors(f"write {directory / CONFIG_FILE}"):
                    config.write(directory / CONFIG_FILE)
            self.reembedded = reembed_roles(opened.store, views, stale, self.progress)
            ctx = self.ctx = PartContext(opened.store, opened.directory, views, config, writable=not read_only)
            self.views = views
            self.vectors, self.keywords, self.topics = VectorPart(ctx), KeywordPart(ctx), TopicPart(ctx)
            self.graph = GraphPart(ctx, self.vectors)
            self.sentences = SentencePart(ctx)
            self.readview = ReadViewPart(ctx)
            # the derived parts, in dependency order: adding a part is one more entry here
            self.parts = [self.vectors, self.keywords, self.sentences, self.topics, self.graph, CheckpointPart(ctx),
                          self.readview]
            self.seen = opened.store.last_change()  # other writers' later commits are caught up with by poll()
            for part in self.parts:
                part.open()
            self.maintain()
        except BaseException:
            try:
                self.close_store()
            finally:
                if fresh:  # a refused create leaves nothing half made
                    discard_new(directory, OWN_FILES, made)
            raise

    # -- checks -----------------------------------------------------------------
    @property
    def closed(self) -> bool:
        """True after ``close()`` (or before ``open()``)."""
        return self.store is None

    def same_process(self) -> None:
        """Raise MemoryForkedError in a process other than the one that opened the handle."""
        if self.pid != os.getpid():
            raise MemoryForkedError(
                f"this Memory of {self.directory} was opened in process {self.pid} and cannot be used in process "
                f"{os.getpid()} (after a fork): open a new handle in each worker, e.g. Memory(path, read_only=True) "
                "for readers, or share one memory through memctl serve or a PostgreSQL store (README, 'Many "
                "processes')")

    def live(self) -> Store:
        """The store; MemoryClosedError after ``close()``."""
        self.same_process()
        if self.store is None:
            raise MemoryClosedError("this Memory is closed; open it again with Memory(path)")
        return self.store

    def writable(self) -> Store:
        """The store; ReadOnlyError for a read-only handle."""
        store = self.live()
        if self.read_only:
            raise ReadOnlyError("this Memory was opened with read_only=True; open it without read_only to write")
        return store

    # -- keeping the parts current ------------------------------------------------------
    def poll(self) -> Store:
        """The live store, after catching up with other processes' commits (a shared store) and swapping in
        finished background refits (and starting what they make due)."""
        store = self.live()
        caught = store.shared and self._catch_up(store)
        if any([part.poll() for part in self.parts]) or caught:  # others' records may make a refit due here too
            self.maintain()
        return store

    def _catch_up(self, store: Store) -> bool:
        """Tell every part what other writers added and deleted since the last look (their order kept); True
        when there was anything."""
        self.seen, added, deleted = store.changes_since(self.seen)
        if not added and not deleted:  # the usual case for a search: no O(n) look at the index's ids
            return False
        if deleted:
            for part in self.parts:
                part.on_delete(np.asarray(deleted, dtype=np.int64))
        added_ids = np.asarray(added, dtype=np.int64)
        lacking = {part.name: part.lacking(added_ids) for part in self.parts}  # each part by what it holds: a
        fresh = np.unique(np.concatenate([added_ids[:0], *lacking.values()]))  # refit may have brought some in
        if not len(fresh):
            return True
        with store.read_transaction():  # records and vectors of one committed state
            records = store.get(fresh)
            ids, raw = raw_vectors(store, self.views, fresh)
        batch = AddBatch(ids, tuple(records[int(i)].text for i in ids), raw, self.views.index_vectors(raw),
                         self.space(), ())
        for part in self.parts:
            part.on_add(batch.only(lacking[part.name]))
        return True

    def space(self) -> str:
        """The vector space of the index vectors now (see :meth:`PartContext.space`)."""
        assert self.ctx is not None
        return self.ctx.space()

    def maintain(self) -> None:
        """Start (or, inline, run) every refit that is due."""
        assert self.ctx is not None
        # parts refitting inline one after another (background=False) read the store's index vectors once
        with self.ctx.sharing():
            for part in self.parts:
                part.maintain()

    def settle(self) -> None:
        """Block until no refit runs and none is due (``Memory.wait``)."""
        self.maintain()  # what is due now, e.g. a whitening another process shared without adding records
        while any(part.busy for part in self.parts):
            for part in self.parts:
                part.wait()
            self.maintain()

    @contextmanager
    def bar(self, total: int, desc: str, unit: str, progress: bool | None) -> Iterator[Any]:
        """The progress bar of long work (shown per ``progress``, else the handle's setting, else on a TTY)."""
        enabled = show_progress(progress if progress is not None else self.progress, total, AUTO_PROGRESS)
        with bar(total=total, desc=desc, unit=unit, enabled=enabled) as shown:
            yield shown

    # -- closing ----------------------------------------------------------------
    def close(self) -> None:
        """Finish background refits, save derived files and close the store (``Memory.close``). Idempotent."""
        if self.store is not None:
            self.same_process()
        with self.lock, deferred_interrupts(), database_errors(self.directory):
            if self.store is None:
                return
            failed: BaseException | None = None
            try:
                if not self.read_only:
                    try:
                        self.poll()
                        self.settle()
                    except (SelfmemError, MemoryError) as exc:  # a failed refit: reported once all threads stop
                        failed = exc
                    for part in self.parts:
                        try:
                            part.save()
                        except OSError as exc:  # derived files only: the store holds every acknowledged record
                            failed = failed or StorageError(
                                f"the memory is closed, but derived files could not be saved ({exc}); the store is "
                                "intact and they are rebuilt when the memory is next opened")
            except KeyboardInterrupt:  # while waiting for a refit (interruptible): the handle stays open
                raise
            except BaseException:
                self.close_store()
                raise
            self.close_store()
            if failed is not None:
                raise failed

    def close_store(self) -> None:
        """Stop the parts' threads, close the store and release the directory (no saving)."""
        for part in self.parts:
            part.stop()  # never close the store under a thread (refit, publisher) that still reads it
        _registry.forget(self)
        store, self.store = self.store, None
        try:
            if store is not None:
                store.close()  # a damaged block or a refused checkpoint raises; the rest is released anyway
        finally:
            _registry.release(self.claim, self)
            self.claim = None
            if self.ctx is not None:
                self.ctx.cleanup()
            for private in self.private:
                shutil.rmtree(private, ignore_errors=True)
            self.private = ()

    def save_now(self) -> bool:
        """Save every part's current state without waiting for a running refit (the exit path after Ctrl-C:
        the parts agree with the store, whose every acknowledged record is committed). Closes the store and
        returns True when no refit runs; else leaves it open under the refit (the process is about to end
        with ``os._exit``, which never tears the database down under a thread)."""
        with self.lock:
            if self.store is None:
                return True
            for part in self.parts:
                part.save()
            if all(part.refit.finished for part in self.parts):
                self.close_store()
                return True
            return False

    def publish_now(self) -> None:
        """Publish the read view now if anything changed since its last publication (for a reader in this process)."""
        with self.lock:
            if self.store is not None:
                self.readview.publish_pending()


class HasState(Protocol):
    """What :func:`guarded` needs of the object whose method it wraps (the ``Memory`` facade)."""

    @property
    def _state(self) -> MemoryState: ...


P = ParamSpec("P")
R = TypeVar("R")
M = TypeVar("M", bound=HasState)


def guarded(*, write: bool = False, poll: bool = True
            ) -> Callable[[Callable[Concatenate[M, P], R]], Callable[Concatenate[M, P], R]]:
    """Decorate a public method: under the handle's lock, with Ctrl-C held until the call has committed or
    rolled back (see ``selfmem._interrupt``), after checking it is open (``write``: and writable), and
    (``poll``) after swapping in finished background refits."""

    def wrap(fn: Callable[Concatenate[M, P], R]) -> Callable[Concatenate[M, P], R]:
        @functools.wraps(fn)
        def call(self: M, /, *args: P.args, **kwargs: P.kwargs) -> R:
            state = self._state
            state.same_process()  # before the lock: a forked child may inherit it held by a thread it lacks
            with state.lock, deferred_interrupts():  # Ctrl-C lands once the call has committed or rolled back
                if write:
                    state.writable()
                with database_errors(state.directory):
                    if poll:
                        state.poll()
                    else:
                        state.live()
                    return fn(self, *args, **kwargs)

        return call

    return wrap
