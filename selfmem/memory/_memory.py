"""The Memory facade: validate, write the store in one transaction, tell each derived part.

The methods that retrieve (``search``, ``enrich``), look (``stats``, ``topics``, ...), walk the graph
(``neighbours``, ...) and move records (``export``, ``import_records``) live in their own modules as method
groups; the state they share and
the guard of every call are in :mod:`._core`; opening a handle's store in :mod:`._handles`.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from .._config import MemoryConfig
from .._errors import InvalidInputError, RecordNotFoundError, SelfmemError, StorageError, storage_errors
from .._interrupt import check_interrupt, deferred_interrupts, interruptible
from .._progress import show_progress
from .._types import Record
from ..retrieval._embedders import Embedder
from . import _handles
from . import _health as h
from . import _validate as v
from ._core import AUTO_PROGRESS, database_errors, guarded
from ._graph_methods import GraphMethods
from ._inspection import InspectMethods
from ._opening import (CONFIG_FILE, STORE_FILE, check_fingerprints, check_foreign, check_open_args, discard_new,
                       make_views, read_config, reembed_roles)
from ._part_checkpoint import CheckpointPart
from ._part_graph import GraphPart
from ._part_keywords import KeywordPart
from ._part_topics import TopicPart
from ._part_vectors import VectorPart
from ._part_readview import ReadViewPart
from ._parts import AddBatch, PartContext
from ._search_methods import SearchMethods
from ._transfer import TransferMethods

__all__ = ["Memory"]

_PART_TYPES = (VectorPart, KeywordPart, TopicPart, GraphPart, CheckpointPart, ReadViewPart)
_OWN_FILES = {STORE_FILE, STORE_FILE + ".wal", CONFIG_FILE, *(f for part in _PART_TYPES for f in part.files)}


class Memory(SearchMethods, InspectMethods, GraphMethods, TransferMethods):
    """A self-organising memory stored in one directory (implements :class:`selfmem.MemoryAPI`).

    Parameters
    ----------
    path : str or path-like
        The memory directory; created if missing. It holds ``memory.duckdb`` (the durable store),
        ``config.toml`` and derived files (index, keywords, whitening, topics).
    config : MemoryConfig, optional
        Written to ``config.toml`` when given; else read from it (defaults for a new memory).
    general, own : Embedder, optional
        Embedder objects to use instead of the ones named in ``config.embedding``.
    progress : bool, optional
        Force progress bars on or off; by default they show for long work on a terminal.
    create : bool
        When False, raise :class:`InvalidInputError` instead of creating a new memory.
    reembed : bool
        When stored vectors were made by other models than the configured ones, re-embed them
        (with a progress bar) instead of raising :class:`EmbedderMismatchError`.
    read_only : bool
        Open a consistent snapshot without the writer's lock (e.g. while a solver writes);
        writes raise :class:`ReadOnlyError`.
    store : str, optional
        ``"duckdb"`` or a PostgreSQL URL (overrides ``config.store``; its password is used, never saved).

    Attributes
    ----------
    directory : Path
        The memory directory. (``path()`` is the graph method: a shortest path between two nodes.)

    Examples
    --------
    >>> from selfmem import EmbeddingConfig, MemoryConfig
    >>> cfg = MemoryConfig(embedding=EmbeddingConfig(general="hash:64", own=None, mode="general"))
    >>> with Memory(tmp / "mem", cfg) as mem:
    ...     with mem.session("exp-1"):
    ...         rid = mem.add("The grid is rotated 90 degrees.", kind="output")
    ...     hits = mem.search("rotated grid", k=5)
    >>> hits[0].record.text, hits[0].record.session
    ('The grid is rotated 90 degrees.', 'exp-1')
    """

    def __init__(self, path: str | os.PathLike[str], config: MemoryConfig | None = None, *,
                 general: Embedder | None = None, own: Embedder | None = None, progress: bool | None = None,
                 create: bool = True, reembed: bool = False, read_only: bool = False, store: str | None = None) -> None:
        self._store, self._pid = None, os.getpid()
        self.directory = check_open_args(path, config, general, own, progress, create=create, reembed=reembed,
                                         read_only=read_only)
        self.read_only = read_only
        config = config if config is not None else read_config(self.directory)
        self.config = config = config if store is None else config.replace(store=store)
        if config.store == "duckdb":  # (a PostgreSQL memory's directory holds only this process's caches)
            check_foreign(self.directory, _OWN_FILES)
        if (not create or read_only) and config.store == "duckdb" and not (self.directory / STORE_FILE).is_file():
            raise InvalidInputError(f"no memory at {self.directory} (no {STORE_FILE}); check the path")
        self._progress, self._lock, self._private, self._claim = progress, threading.RLock(), (), None
        self._session = contextvars.ContextVar(f"selfmem-session-{id(self)}", default=None)
        _handles.track(self)
        views = make_views(config.embedding, general, own)
        with deferred_interrupts(), database_errors(self.directory):  # never half open, never a raw DB error
            self._open(views, reembed, progress)

    def _open(self, views: Any, reembed: bool, progress: bool | None) -> None:
        read_only, config = self.read_only, self.config
        made = not self.directory.exists()
        fresh = not read_only and config.store == "duckdb" and not (self.directory / STORE_FILE).exists()
        if not read_only:
            with storage_errors(f"create the memory directory {self.directory}"):
                self.directory.mkdir(parents=True, exist_ok=True)
            self._claim = _handles.claim(self.directory, self)
        try:
            opened = _handles.open_handle_store(self.directory, STORE_FILE, read_only, _OWN_FILES,
                                                lambda writer: writer._publish_now(), self.config)
            self._store, self._private = opened.store, opened.private
            stale = check_fingerprints(opened.store, views, allow=reembed and not read_only, write=not read_only)
            if not read_only:
                with storage_errors(f"write {self.directory / CONFIG_FILE}"):
                    config.write(self.directory / CONFIG_FILE)
            self._reembedded = reembed_roles(opened.store, views, stale, progress)
            ctx = self._ctx = PartContext(opened.store, opened.directory, views, config, writable=not read_only)
            self._views = views
            self._vectors, self._keywords, self._topics = VectorPart(ctx), KeywordPart(ctx), TopicPart(ctx)
            self._graph = GraphPart(ctx, self._vectors)
            self._readview = ReadViewPart(ctx)
            # the derived parts, in dependency order: adding a part is one more entry here
            self._parts = [self._vectors, self._keywords, self._topics, self._graph, CheckpointPart(ctx), self._readview]
            self._seen = opened.store.last_change()  # other writers' later commits are caught up with by _poll()
            for part in self._parts:
                part.open()
            self._maintain()
        except BaseException:
            try:
                self._close_store()
            finally:
                if fresh:  # a refused create leaves nothing half made
                    discard_new(self.directory, _OWN_FILES, made)
            raise

    @contextlib.contextmanager
    def session(self, name: str) -> Iterator[str]:
        """Context manager: records added inside carry the session ``name`` (nests; per thread / task)."""
        v.check_session(name)
        self._live()
        token = self._session.set(name)
        try:
            yield name
        finally:
            self._session.reset(token)

    @property
    def current_session(self) -> str | None:
        """The session that ``add`` would use now (None outside ``session()``)."""
        return self._session.get()

    # -- writes -----------------------------------------------------------------
    def add(self, text: str, kind: str = "output", metadata: Mapping[str, Any] | None = None, *,
            session: str | None = None, importance: float = 1.0, parents: Sequence[int] = (),
            own_embedding: np.ndarray | None = None, created_at: datetime | None = None,
            key: str | None = None) -> int:
        """Store one memory and index it; return its id.

        Parameters
        ----------
        text : str
            The memory (non-empty).
        kind : str
            One of ``config.kinds``.
        metadata : dict, optional
            JSON-serialisable metadata.
        session : str, optional
            Overrides the session of the enclosing ``session()`` block.
        importance : float
            A finite weight >= 0.
        parents : sequence of int
            Ids of existing records this one derives from.
        own_embedding : array, shape (own_dim,), optional
            Hidden states the solver already computed for ``text`` with its own model (mean-pooled
            layer ``config.embedding.own_layer``); the own model is then not run.
        created_at : datetime, optional
            When the memory was made, timezone-aware (for importing history); default now.
        key : str, optional
            An idempotency key: adding again with the same key writes nothing and returns the first id,
            so a caller can retry an add that raised (e.g. a full disk) without making a duplicate.
        """
        own = None if own_embedding is None else [own_embedding]
        return self.add_many([text], kind=kind, metadata=[metadata], session=session, importance=importance,
                             parents=[parents], own_embedding=own, created_at=created_at,
                             keys=None if key is None else [key])[0]

    @guarded(write=True)
    def add_many(self, texts: Sequence[str], kind: str | Sequence[str] = "output",
                 metadata: Sequence[Mapping[str, Any] | None] | None = None, *,
                 session: str | None = None, importance: float | Sequence[float] = 1.0,
                 parents: Sequence[Sequence[int]] | None = None,
                 own_embedding: np.ndarray | Sequence[np.ndarray] | None = None,
                 progress: bool | None = None,
                 created_at: datetime | Sequence[datetime] | None = None,
                 keys: Sequence[str | None] | None = None) -> list[int]:
        """Store n memories with batched embedding, in one transaction; return the new ids in order.

        ``kind``, ``importance``, ``created_at`` (one value or n), ``metadata`` and ``parents`` (n each)
        are per text; ``created_at`` is timezone-aware (default now: when importing history, pass the
        original times, which ``since``/``until`` and the recency term use); ``keys`` (n, str or None)
        are idempotency keys: a text whose key is already stored is not added again, its first id is returned;
        ``own_embedding`` has shape (n, own_dim). Nothing is written if any input is invalid.
        ``progress`` shows a bar (default: 512 texts or more, on a terminal).
        """
        store = self._live()
        rows = v.check_batch(texts, kind, metadata, session if session is not None else self._session.get(),
                             importance, parents, kinds=self.config.kinds, max_chars=self.config.max_text_chars,
                             existing=store.existing, created_at=created_at, keys=keys)
        if not rows:
            return []
        own_given = None
        if own_embedding is not None:
            if self._views.own is None:
                raise InvalidInputError("own_embedding given but this memory has no own model (config.embedding.own)")
            own_given = v.check_vectors(own_embedding, len(rows), self._views.own.dim, "own_embedding")
        v.check_flag(progress, "progress", optional=True)
        done = store.ids_of_keys([r.key for r in rows if r.key is not None])
        if not done:
            return self._add_rows(rows, own_given, progress)
        # a retry: rows whose key is stored keep their first id; only the others are added
        fresh = [i for i, r in enumerate(rows) if r.key not in done]
        new_ids = iter(self._add_rows([rows[i] for i in fresh], None if own_given is None else own_given[fresh],
                                      progress) if fresh else [])
        return [done[r.key] if r.key in done else next(new_ids) for r in rows]

    def _add_rows(self, rows: list[Any], own_given: np.ndarray | None, progress: bool | None,
                  raw: dict[str, np.ndarray] | None = None) -> list[int]:
        """Embed, write (one transaction) and index validated rows; the new ids, in order.

        ``raw`` (by role, each (len(rows), dim)) are the rows' vectors from ``self._views.embed_raw`` when the
        caller embedded them already (the server does, outside the handle's lock)."""
        store = self._live()
        if raw is None:
            show = show_progress(progress if progress is not None else self._progress, len(rows), AUTO_PROGRESS)
            with interruptible():  # nothing is written yet: Ctrl-C may stop the embedding at once
                raw = self._views.embed_raw([r.text for r in rows], own_given, progress=show)
        ids = np.asarray(store.allocate_ids(len(rows)), dtype=np.int64)
        batch = AddBatch(ids, tuple(r.text for r in rows), raw, self._views.index_vectors(raw), self._ctx.space(),
                         tuple(rows))
        writes = [w for w in (part.write(batch) for part in self._parts) if w is not None]
        store.insert(rows, raw, ids.tolist(), writes)
        for part in self._parts:
            part.on_add(batch)
        self._maintain()
        out: list[int] = ids.tolist()
        return out

    @guarded(write=True)
    def delete(self, ids: int | Sequence[int]) -> None:
        """Delete one record or several; raises RecordNotFoundError (deleting nothing) if any id is unknown."""
        store = self._live()
        wanted = v.check_ids(ids)
        missing = set(wanted) - store.existing(wanted)
        if missing:
            raise RecordNotFoundError(f"no records with ids {sorted(missing)}; nothing was deleted")
        store.delete(wanted, [w for w in (part.write_delete(wanted) for part in self._parts) if w is not None])
        for part in self._parts:
            part.on_delete(wanted)
        self._maintain()

    # -- reads ------------------------------------------------------------------
    @guarded(poll=False)
    def get(self, id: int) -> Record:
        """The record with this id; raises RecordNotFoundError."""
        rid = v.check_id(id)
        rec = self._live().get([rid]).get(rid)
        if rec is None:
            raise RecordNotFoundError(f"no record with id {rid}")
        return rec

    # -- maintenance ------------------------------------------------------------
    @guarded()  # polls first: catches up with other writers and starts the refits that makes due
    def wait(self) -> None:
        """Block until background refits (whitening, index, topics) are finished and swapped in, including those
        due now (on a shared store: after catching up with other processes' commits and whitening)."""
        self._maintain()  # what is due now, e.g. a whitening another process shared without adding records
        while any(part.busy for part in self._parts):
            for part in self._parts:
                part.wait()
            self._maintain()

    @guarded(write=True, poll=False)
    def rebuild(self, *, reembed: bool = False) -> None:
        """Refit every derived part from the store now: whitening, index, keywords, topics, tree, labels, graph.

        Parameters
        ----------
        reembed : bool
            Also re-run every embedder over every record's text first (needed after a model
            change; roles already re-embedded when this Memory was opened are not run again).
        """
        v.check_flag(reembed, "reembed")
        store = self._live()
        if reembed:
            roles = [r for r in self._views.roles if r not in self._reembedded]
            self._reembedded |= reembed_roles(store, self._views, roles, self._progress)
        h.mark_rebuild(store)
        with self._ctx.sharing():  # the parts refit one after another on one store: read its vectors once
            for part in self._parts:
                part.rebuild()
                check_interrupt()  # between parts: each is whole, and the next open or rebuild refits the rest

    def close(self) -> None:
        """Finish background refits, save derived files and close the store. Idempotent.

        Ctrl-C while it waits for a refit leaves the memory open and usable (close it again later; an
        interpreter that exits closes it, as does garbage collection of a handle no longer referenced).
        A failed refit is raised after the store is closed. In a forked child it raises
        :class:`MemoryForkedError` and leaves the parent's store alone.
        """
        if self._store is not None:
            self._same_process()
        with self._lock, deferred_interrupts(), database_errors(self.directory):
            if self._store is None:
                return
            failed: BaseException | None = None
            try:
                if not self.read_only:
                    try:
                        self.wait()
                    except (SelfmemError, MemoryError) as exc:  # a failed refit: reported once all threads stop
                        failed = exc
                    for part in self._parts:
                        try:
                            part.save()
                        except OSError as exc:  # derived files only: the store holds every acknowledged record
                            failed = failed or StorageError(
                                f"the memory is closed, but derived files could not be saved ({exc}); the store is "
                                "intact and they are rebuilt when the memory is next opened")
            except KeyboardInterrupt:  # while waiting for a refit (interruptible): the handle stays open
                raise
            except BaseException:
                self._close_store()
                raise
            self._close_store()
            if failed is not None:
                raise failed
