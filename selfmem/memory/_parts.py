"""The derived-state contract: every part rebuildable from the store follows it.

A *part* is state derived from the durable store (the FAISS index with the own-view whitening and
the re-rank file, the BM25 keyword index, the topic model, the knowledge graph). ``Memory``
validates a call, writes the store in one transaction and tells each part, in list order:

=========================  ==============================================================
``open()``                 load the part's files, reconcile them with the store (or rebuild)
``write(batch)``           rows to write *in the records' transaction* (or None)
``write_delete(ids)``      rows to change *in the delete's transaction* (or None)
``on_add(batch)``          after the commit: update in-memory state with the new records
``on_delete(ids)``         after the commit: forget records
``maintain()``             decide whether a refit is due; start it (in the background)
``poll()``                 swap in a finished refit (True when something changed)
``rebuild()``              refit from the whole store now, synchronously
``save()``                 write the part's files atomically
``wait()``, ``busy``       block until a running refit is swapped in; whether one runs
=========================  ==============================================================

Refit rules live with their parts. A refit runs in a background thread (:class:`Refit`) on a
consistent read snapshot of the store taken through a second DuckDB connection, builds a new
object beside the one in use, and is swapped in by the writer's thread at its next call: the swap
catches up with what was added or deleted meanwhile (the generic :func:`reconcile`), so no add or
search ever waits for a fit. ``MemoryConfig(background=False)`` runs refits inline instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .._config import MemoryConfig
from .._errors import CorruptMemoryError, RefitError, SelfmemError
from .._interrupt import interruptible
from .._types import NewRecord
from ..retrieval._views import Views
from ..store import Store

__all__ = ["AddBatch", "PartContext", "DerivedPart", "Part", "Refit", "reconcile", "index_vectors", "report_failure",
           "REFIT_OBSERVERS"]


@dataclass(frozen=True)
class AddBatch:
    """New records as parts see them.

    Attributes
    ----------
    ids : ndarray, shape (n,) int64
    texts : tuple of str, length n
    raw : dict of role to ndarray, shape (n, dim_role)
        Raw unit vectors of every embedder.
    vectors : ndarray, shape (n, dim)
        Index vectors under ``space``.
    space : str
        The views' signature (JSON) that ``vectors`` were made under.
    records : tuple of NewRecord, length n
        The validated rows (kind, metadata, session, parents, ...).
    """

    ids: np.ndarray
    texts: tuple[str, ...]
    raw: Mapping[str, np.ndarray]
    vectors: np.ndarray
    space: str
    records: tuple[NewRecord, ...] = ()

    def only(self, ids: np.ndarray) -> AddBatch:
        """The part of the batch whose ids are in ``ids`` (order kept); the batch itself when that is all."""
        keep = np.isin(self.ids, ids)
        if keep.all():
            return self
        where = np.flatnonzero(keep)
        return AddBatch(self.ids[where], tuple(self.texts[i] for i in where),
                        {role: v[where] for role, v in self.raw.items()}, self.vectors[where], self.space,
                        tuple(self.records[i] for i in where) if self.records else ())


@dataclass
class PartContext:
    """What parts share: the live store, the directory, the views and the config."""

    store: Store
    directory: Path
    views: Views
    config: MemoryConfig
    writable: bool
    _space: tuple[dict[str, Any], str] | None = field(default=None, repr=False, compare=False)
    _shared: dict[str, tuple[np.ndarray, np.ndarray]] | None = field(default=None, repr=False, compare=False)
    _scratch: Path | None = field(default=None, repr=False, compare=False)

    def build_dir(self) -> Path:
        """Where a part may write files it builds: the memory directory for a writer; for a reader (which
        reads the writer's files in place and must never change them) a private temp directory."""
        if self.writable:
            return self.directory
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="selfmem-reader-"))
        return self._scratch

    def cleanup(self) -> None:
        """Remove a reader's temp directory (at close)."""
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    @contextlib.contextmanager
    def sharing(self) -> Iterator[None]:
        """Within the block, :meth:`index_vectors` of the whole store is computed once per views signature and
        shared by every part (``Memory.rebuild`` refits them one after another on one unchanged store)."""
        self._shared = {}
        try:
            yield
        finally:
            self._shared = None

    def index_vectors(self, store: Store, views: Views, ids: Sequence[int] | np.ndarray | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
        """Index vectors of stored records under ``views``: ids (n,) and vectors (n, views.dim) (see
        :func:`index_vectors`), from the shared copy inside :meth:`sharing`."""
        shared = self._shared
        if shared is None or store is not self.store:
            return index_vectors(store, views, ids)
        key = json.dumps(views.signature(), sort_keys=True)
        if key not in shared:
            shared[key] = index_vectors(store, views)
        all_ids, vecs = shared[key]
        if ids is None:
            return all_ids, vecs
        keep = np.isin(all_ids, np.asarray(ids, dtype=np.int64))  # by id, stored ones only: as the store returns them
        return all_ids[keep], vecs[keep]

    def space(self, views: Views | None = None) -> str:
        """The signature of the index-vector space (JSON), which derived vectors depend on."""
        sig = (views or self.views).signature()  # the same dict until the whitening changes
        cached = self._space  # read once: a background job may call this too
        if cached is None or cached[0] is not sig:
            cached = self._space = (sig, json.dumps(sig, sort_keys=True))
        return cached[1]


class DerivedPart(Protocol):
    """What ``Memory`` calls on each part (see the module docstring for when)."""

    name: str
    files: tuple[str, ...]
    """The files (and directories) this part keeps in the memory directory."""

    def open(self) -> None: ...

    def write(self, batch: AddBatch) -> Callable[[Store], None] | None: ...

    def write_delete(self, ids: Sequence[int] | np.ndarray) -> Callable[[Store], None] | None: ...

    def on_add(self, batch: AddBatch) -> None: ...

    def on_delete(self, ids: Sequence[int] | np.ndarray) -> None: ...

    def maintain(self) -> None: ...

    def poll(self) -> bool: ...

    def rebuild(self) -> None: ...

    def save(self) -> None: ...

    def wait(self) -> None: ...

    def stop(self) -> None: ...

    @property
    def busy(self) -> bool: ...

    def notes(self) -> list[str]: ...


REFIT_OBSERVERS: list[Callable[[str, float], None]] = []
"""Called with (part name, seconds) as each background refit ends (``memctl serve`` exports them)."""


def report_failure(what: str, error: BaseException, then: str) -> None:
    """Report, in the owner's thread, what failed in a background thread: the error itself when it ran out of
    memory; a warning when it failed on the data or the file system (``then`` says what happens next); else
    a :class:`RefitError` chained to it. Every background thread of a memory reports through this, once."""
    if isinstance(error, MemoryError):
        raise error
    message = f"{what} failed ({type(error).__name__}: {error}); {then}"
    if not isinstance(error, (SelfmemError, OSError, ArithmeticError, ValueError, RuntimeError)):
        raise RefitError(message) from error
    warnings.warn(message, RuntimeWarning, stacklevel=4)


BACKGROUND_NICE = 10
"""How much lower than the caller's the scheduling priority of a background refit's thread is (Linux)."""


def background_priority() -> None:
    """Lower the calling thread's CPU priority by :data:`BACKGROUND_NICE` (Linux; elsewhere nothing).

    Refits are background work: under load (a server answering searches and adds on two cores) they took
    a fifth of the CPU from the requests; at a lower priority they use what the requests leave. Threads
    the job starts (BLAS, OpenMP) inherit the priority.
    """
    setp = getattr(os, "setpriority", None)
    if setp is None or not hasattr(threading, "get_native_id"):
        return
    try:
        tid = threading.get_native_id()
        setp(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + BACKGROUND_NICE))
    except OSError:  # a sandbox that forbids it: the job runs at the caller's priority
        pass


class Refit:
    """At most one refit job at a time: run in a thread (or inline), swapped in by the owner's thread.

    Parameters
    ----------
    name : str
        For messages.
    background : bool
        Run jobs in a daemon thread; when False, :meth:`start` runs the job and the swap at once.
    """

    def __init__(self, name: str, background: bool) -> None:
        self.name = name
        self.background = background
        self._thread: threading.Thread | None = None
        self._done = threading.Event()  # set by the job's thread as its last act (not Thread.is_alive(): after
        # a join() interrupted by Ctrl-C, Python 3.11 can report a thread stopped while it still runs)
        self._swap: Callable[[Any], None] | None = None
        self._result: Any = None
        self._error: BaseException | None = None

    @property
    def running(self) -> bool:
        """True while a job is started and not yet swapped in."""
        return self._thread is not None

    def start(self, job: Callable[[], Any], swap: Callable[[Any], None]) -> None:
        """Run ``job()`` and later ``swap(result)`` (in the owner's thread). Ignored while one is running."""
        if self._thread is not None:
            return
        if not self.background:
            swap(job())
            return

        def run() -> None:
            background_priority()
            start = time.perf_counter()
            try:
                self._result = job()
            except BaseException as exc:  # reported by poll() in the owner's thread
                self._error = exc
            finally:
                for observe in list(REFIT_OBSERVERS):  # e.g. the server's metrics
                    observe(self.name, time.perf_counter() - start)
                self._done.set()

        self._done.clear()
        self._swap = swap
        self._thread = threading.Thread(target=run, name=f"selfmem-refit-{self.name}", daemon=True)
        self._thread.start()

    @property
    def finished(self) -> bool:
        """No job is running (none was started, or the running one has ended, swapped in or not)."""
        return self._thread is None or self._done.is_set()

    def join(self) -> None:
        """Block until the running job's thread has ended (interruptible: Ctrl-C leaves the job running and
        a later poll() swaps it in)."""
        while not self.finished:
            self._done.wait(0.05)
        if self._thread is not None:
            self._thread.join()  # returns at once: the job has set its event as its last act

    def poll(self) -> bool:
        """Swap in a finished job; True if one was swapped. A failed job is reported once: as a warning when
        it failed on the data or the file system (the previous state stays in use), as the original error
        when it ran out of memory, else as a :class:`RefitError`."""
        if self._thread is None or not self._done.is_set():
            return False
        swap, result, error = self._swap, self._result, self._error
        assert swap is not None
        self._thread, self._swap, self._result, self._error = None, None, None, None
        if error is not None:
            report_failure(f"background refit of the {self.name}", error,
                           "the previous state stays in use; Memory.rebuild() refits it")
            return False
        swap(result)
        return True

    def wait(self) -> bool:
        """Block until the running job ends, then swap it in."""
        with interruptible():
            self.join()
        return self.poll()


class Part:
    """Base class with the contract's no-op defaults and a :class:`Refit` in ``self.refit``."""

    name = "part"
    files: tuple[str, ...] = ()

    def __init__(self, ctx: PartContext) -> None:
        self.ctx = ctx
        self.refit = Refit(self.name, ctx.config.background and ctx.writable)

    def open(self) -> None:
        pass

    def write(self, batch: AddBatch) -> Callable[[Store], None] | None:
        return None

    def write_delete(self, ids: Sequence[int] | np.ndarray) -> Callable[[Store], None] | None:
        return None

    def on_add(self, batch: AddBatch) -> None:
        pass

    def on_delete(self, ids: Sequence[int] | np.ndarray) -> None:
        pass

    def maintain(self) -> None:
        pass

    def lacking(self, ids: np.ndarray) -> np.ndarray:
        """Of ``ids`` (records other processes committed), those this part has not taken in yet (default: all;
        a part whose refit may already hold some says which it lacks)."""
        return ids

    def poll(self) -> bool:
        return self.refit.poll()

    def rebuild(self) -> None:
        pass

    def save(self) -> None:
        pass

    def wait(self) -> None:
        self.refit.wait()

    def stop(self) -> None:
        """Let every thread of the part end (before the store closes); nothing is swapped in."""
        self.refit.join()

    @property
    def busy(self) -> bool:
        """True while a refit runs (not yet swapped in)."""
        return self.refit.running

    def notes(self) -> list[str]:
        return []

    def save_after_swap(self) -> None:
        """Save after a refit was swapped in (writer only); a full disk warns instead of failing the add
        that swapped it in: the store is intact, and the files are saved again at close or rebuilt."""
        if not self.ctx.writable:
            return
        try:
            self.save()
        except OSError as exc:
            warnings.warn(f"could not save the {self.name} ({exc}); the store is intact and it is saved again "
                          "at close or rebuilt at the next open", RuntimeWarning, stacklevel=3)

    @contextlib.contextmanager
    def reading(self, *, snapshot: bool = True) -> Iterator[Store]:
        """The store for a refit job: a second connection when refits run in the background (closed
        afterwards), the live store when they run inline; inside one read transaction when ``snapshot``."""
        store = self.ctx.store.reader() if self.refit.background else self.ctx.store
        try:
            if snapshot:
                with store.read_transaction():
                    yield store
            else:
                yield store
        finally:
            if store is not self.ctx.store:
                store.close()


def reconcile(held: np.ndarray, store_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ids a part lacks and ids it holds that the store does not.

    >>> reconcile(np.array([1, 2, 5]), np.array([1, 2, 3]))
    (array([3]), array([5]))
    """
    return np.setdiff1d(store_ids, held), np.setdiff1d(held, store_ids)


def raw_vectors(store: Store, views: Views, ids: Sequence[int] | np.ndarray | None = None
                ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Stored raw vectors of every view, aligned by id: ids (n,), {role: (n, dim_role)}."""
    if store.shared:  # other processes commit between two queries: read every role from one snapshot
        with store.read_transaction():
            return _raw_vectors(store, views, ids)
    return _raw_vectors(store, views, ids)


def _raw_vectors(store: Store, views: Views, ids: Sequence[int] | np.ndarray | None
                 ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    out: dict[str, np.ndarray] = {}
    ref_ids = None
    for role, emb in views.roles.items():
        rids, vecs = store.vectors(role, ids)
        if ref_ids is not None and not np.array_equal(rids, ref_ids):
            raise CorruptMemoryError(
                f"records lack {role} vectors; run Memory(path, reembed=True) or memctl rebuild --reembed")
        ref_ids = rids
        out[role] = vecs if len(rids) else np.zeros((0, emb.dim), np.float32)
    return ref_ids if ref_ids is not None else np.zeros(0, np.int64), out


def index_vectors(store: Store, views: Views, ids: Sequence[int] | np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Index vectors of stored records under ``views``: ids (n,) and vectors (n, views.dim)."""
    rids, raw = raw_vectors(store, views, ids)
    if len(rids) == 0:
        return rids, np.zeros((0, views.dim), dtype=np.float32)
    return rids, views.index_vectors(raw)
