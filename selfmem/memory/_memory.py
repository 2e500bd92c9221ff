"""The Memory facade: validate, write the store in one transaction, tell each derived part."""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import shutil
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from .._config import MemoryConfig
from ..graph._build import key, parse_key
from ..graph._embedded import to_edge as graph_edge
from .._errors import (InvalidInputError, MemoryClosedError, MemoryLockedError, ReadOnlyError, StorageError,
                       RecordNotFoundError)
from .._progress import bar, show_progress
from .._types import Enriched, Hit, Points, Record, Stats, Subgraph, Topic
from ..clustering._topics import TOPICS_FILE
from ..clustering._tree import lineage
from ..retrieval._embedders import Embedder
from ..retrieval._enrich import build_prompt
from ..retrieval._ivfpq import RERANK_IDS, RERANK_VECS
from ..retrieval._keywords import KEYWORDS_FILE
from ..retrieval._search import single_blas_thread
from ..retrieval._views import WHITENER_FILE
from . import _graph_api as g
from . import _health as h
from . import _retrieve
from . import _validate as v
from ._part_checkpoint import CheckpointPart
from ._part_graph import GraphPart
from ..graph._mirror import EXPORT_STATE, export
from ..graph._neo4j import Neo4jBackend, credentials
from ..graph._nx import NetworkxBackend
from ._part_keywords import KeywordPart
from ._part_topics import TopicPart
from ._part_vectors import STAGING_DIR, VectorPart
from ._opening import (CONFIG_FILE, STORE_FILE, check_fingerprints, check_foreign, check_open_args, make_views,
                       read_config, reembed_roles)
from ._parts import AddBatch, DerivedPart, PartContext
from ._export import export_records
from ._importing import read_records, session_groups
from ._part_view import ViewPart
from ._store import Store, snapshot
from ._view import VIEW_DIR, open_published

__all__ = ["Memory"]

_OWN_FILES = {STORE_FILE, STORE_FILE + ".wal", CONFIG_FILE, "index.faiss", "index.json", WHITENER_FILE,
              RERANK_VECS, RERANK_IDS, KEYWORDS_FILE, TOPICS_FILE, STAGING_DIR, EXPORT_STATE, VIEW_DIR}
_AUTO_PROGRESS = 512
_FILTERS = ("kinds", "sessions", "where", "since", "until", "max_distance", "mode", "expand")


class Memory:
    """A self-organising memory stored in one directory.

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
                 create: bool = True, reembed: bool = False, read_only: bool = False) -> None:
        self.directory = check_open_args(path, config, general, own, progress, create=create, reembed=reembed,
                                    read_only=read_only)
        check_foreign(self.directory, _OWN_FILES)
        self.read_only = read_only
        if (not create or read_only) and not (self.directory / STORE_FILE).is_file():
            raise InvalidInputError(f"no memory at {self.directory} (no {STORE_FILE}); check the path")
        cfg_path = self.directory / CONFIG_FILE
        if config is None:
            config = read_config(self.directory)
        self.config = config
        self._progress = progress
        self._lock = threading.RLock()
        self._session: contextvars.ContextVar[str | None] = contextvars.ContextVar(
            f"selfmem-session-{id(self)}", default=None)
        views = make_views(config.embedding, general, own)
        self._copy: Any = None  # a read-only open's private copy of the directory (only without a read view)
        self._pin: Any = None  # a read-only open's hard links to the view files it reads
        if read_only:
            with Memory._writers_lock:
                writer = Memory._writer_of(self.directory)
            if writer is not None:  # the writer is in this process: a reader sees everything it committed
                writer._publish_now()
            opened = open_published(self.directory)
            if opened is not None:  # the writer's published view: no lock, no copy (see _view)
                self._dir, (self._store, self._pin) = self.directory, opened
            else:  # a memory last written by an older selfmem: copy it once
                self._dir, self._store = snapshot(self.directory, STORE_FILE, _OWN_FILES - {VIEW_DIR})
                self._copy = self._dir
        else:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._claim()
            try:
                self._dir, self._store = self.directory, Store(self.directory / STORE_FILE)
            except BaseException:
                self._release()
                raise
        try:
            stale = check_fingerprints(self._store, views, allow=reembed and not read_only, write=not read_only)
            if not read_only:
                config.write(cfg_path)
            self._reembedded = reembed_roles(self._store, views, stale, progress)
            ctx = self._ctx = PartContext(self._store, self._dir, views, config, writable=not read_only)
            self._views = views
            self._vectors, self._keywords, self._topics = VectorPart(ctx), KeywordPart(ctx), TopicPart(ctx)
            self._graph = GraphPart(ctx, self._vectors)
            self._view = ViewPart(ctx)
            # the derived parts, in dependency order: adding a part is one more entry here
            self._parts: list[DerivedPart] = [self._vectors, self._keywords, self._topics, self._graph,
                                              CheckpointPart(ctx), self._view]
            for part in self._parts:
                part.open()
            self._maintain()
        except BaseException:
            self._close_store()
            raise

    # -- state ------------------------------------------------------------------
    def _live(self) -> Store:
        if self._store is None:
            raise MemoryClosedError("this Memory is closed; open it again with Memory(path)")
        return self._store

    def _writable(self) -> Store:
        store = self._live()
        if self.read_only:
            raise ReadOnlyError("this Memory was opened with read_only=True; open it without read_only to write")
        return store

    def _poll(self) -> Store:
        """The live store, after swapping in finished background refits (and starting what they make due)."""
        store = self._live()
        if any([part.poll() for part in self._parts]):
            self._maintain()
        return store

    def _maintain(self) -> None:
        for part in self._parts:
            part.maintain()

    @property
    def closed(self) -> bool:
        """True after ``close()``."""
        return self._store is None

    def __len__(self) -> int:
        with self._lock:
            return self._live().count()

    def __repr__(self) -> str:
        return f"Memory({str(self.directory)!r}, {'closed' if self.closed else f'{len(self)} records'})"

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
        with self._lock:
            store = self._writable()
            self._poll()
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
                return self._add_rows(store, rows, own_given, progress)
            # a retry: rows whose key is stored keep their first id; only the others are added
            fresh = [i for i, r in enumerate(rows) if r.key not in done]
            new_ids = iter(self._add_rows(store, [rows[i] for i in fresh],
                                          None if own_given is None else own_given[fresh], progress) if fresh else [])
            return [done[r.key] if r.key in done else next(new_ids) for r in rows]

    def _add_rows(self, store: Store, rows: list[Any], own_given: np.ndarray | None, progress: bool | None
                  ) -> list[int]:
        """Embed, write (one transaction) and index validated rows; the new ids, in order."""
        show = show_progress(progress if progress is not None else self._progress, len(rows), _AUTO_PROGRESS)
        raw = self._views.embed_raw([r.text for r in rows], own_given, progress=show)
        ids = np.asarray(store.allocate_ids(len(rows)), dtype=np.int64)
        batch = AddBatch(ids, tuple(r.text for r in rows), raw, self._views.index_vectors(raw), self._ctx.space(),
                         tuple(rows))
        writes = [w for w in (part.write(batch) for part in self._parts) if w is not None]
        store.insert(rows, raw, ids.tolist(), writes)
        for part in self._parts:
            part.on_add(batch)
        self._maintain()
        return ids.tolist()

    def delete(self, ids: int | Sequence[int]) -> None:
        """Delete one record or several; raises RecordNotFoundError (deleting nothing) if any id is unknown."""
        with self._lock:
            store = self._writable()
            self._poll()
            wanted = v.check_ids(ids)
            missing = set(wanted) - store.existing(wanted)
            if missing:
                raise RecordNotFoundError(f"no records with ids {sorted(missing)}; nothing was deleted")
            store.delete(wanted, [w for w in (part.write_delete(wanted) for part in self._parts) if w is not None])
            for part in self._parts:
                part.on_delete(wanted)
            self._maintain()

    # -- reads ------------------------------------------------------------------
    def get(self, id: int) -> Record:
        """The record with this id; raises RecordNotFoundError."""
        with self._lock:
            rid = v.check_id(id)
            rec = self._live().get([rid]).get(rid)
            if rec is None:
                raise RecordNotFoundError(f"no record with id {rid}")
            return rec

    def search(self, query: str, k: int = 5, *, kinds: Sequence[str] | None = None,
               sessions: Sequence[str] | None = None, where: Mapping[str, Any] | None = None,
               since: datetime | None = None, until: datetime | None = None,
               max_distance: float | None = None, mode: str | None = None,
               expand: bool | Sequence[str] | None = None) -> list[Hit]:
        """The k memories most relevant to ``query``, best first.

        Parameters
        ----------
        query : str
        k : int
        kinds, sessions : list of str, optional
            Keep only records of these kinds / sessions.
        where : dict, optional
            Metadata filters: ``{"task": "3c9b0459"}`` (equality; dotted keys reach nested values) or
            operators ``{"score": {"$gte": 0.5}}`` ($eq $ne $gt $gte $lt $lte $in $nin $exists).
        since, until : datetime, optional
            Keep records created in ``[since, until)`` (timezone-aware).
        max_distance : float, optional
            Drop hits whose cosine distance ``1 - cos`` exceeds it.
        mode : {"hybrid", "dense", "keyword", "topics"}, optional
            Override ``config.search.mode`` for this call (formulas in ``selfmem.retrieval._search``).
        expand : bool or list of str, optional
            Graph expansion: the neighbours of the best ``config.graph.expand_hits`` hits along these
            edge types (FOLLOWS, DERIVED_FROM, SOLVES, SIMILAR_TO) are placed right after the hit that
            brought them, marked by ``Hit.via`` and ``Hit.expanded_from``; the list stays at k. None
            (default) follows ``config.graph.expand`` (SOLVES and FOLLOWS), True all four, False none.

        Returns
        -------
        list of Hit
            ``score`` is the cosine, ``distance`` is ``1 - score``, ``relevance`` the ranking score.
        """
        with self._lock, single_blas_thread():
            return self._search(query, k, dict(kinds=kinds, sessions=sessions, where=where, since=since,
                                               until=until, max_distance=max_distance, mode=mode, expand=expand))

    def _search(self, query: Any, k: Any, filters: dict[str, Any]) -> list[Hit]:
        store = self._poll()
        v.check_text(query, self.config.max_text_chars, "query")
        k = v.check_k(k)
        mode = filters.pop("mode")
        gcfg = self.config.graph
        rels = g.check_expand(filters.pop("expand"), gcfg.expand if gcfg.enabled else ())
        cfg = self.config.search if mode is None else v.check_mode(mode, self.config.search)
        checked = _retrieve.check_filters(**filters, known_kinds=self.config.kinds)
        return _retrieve.search(store, self._views, self._vectors, self._keywords.index, self._topics, query, k,
                                cfg, checked, self._graph.graph if self._graph.available else None, rels,
                                gcfg.expand_hits)

    def enrich(self, prompt: str, k: int = 5, *, budget_tokens: int | None = None, mark_used: bool = True,
               **search: Any) -> Enriched:
        """The prompt with the most relevant memories placed before it in a quoted "past context" block.

        Parameters
        ----------
        prompt : str
            The solver's new question (also the search query).
        k : int
            Memories retrieved (fewer are placed if the budget is tight).
        budget_tokens : int, optional
            Token budget of the whole final prompt; whole memories are cut, least useful first.
        mark_used : bool
            Increment ``use_count`` and set ``last_used_at`` of the memories placed.
        **search
            Passed to :meth:`search` (kinds, sessions, where, since, until, max_distance, mode, expand).

        Returns
        -------
        Enriched
            ``prompt`` (the final text), ``hits`` (placed memories; pass their ids as ``parents=``
            when adding the solver's answer), ``tokens``, ``dropped``.
        """
        with self._lock:
            v.check_text(prompt, self.config.max_text_chars, "prompt")
            if budget_tokens is not None:
                budget_tokens = v.check_k(budget_tokens, "budget_tokens")
            v.check_flag(mark_used, "mark_used")
            unknown = set(search) - set(_FILTERS)
            if unknown:
                raise InvalidInputError(f"enrich() got unknown arguments {sorted(unknown)}")
            with single_blas_thread():
                hits = self._search(prompt, k, {n: search.get(n) for n in _FILTERS})
            out = build_prompt(prompt, hits, budget_tokens, self._views.count_tokens)
            if mark_used and out.hits:
                self._writable().mark_used([h.record.id for h in out.hits])
            return out

    # -- the knowledge graph ------------------------------------------------------
    def neighbours(self, node: int | str, rel: str | Sequence[str] | None = None, *, direction: str = "both",
                   depth: int = 1, limit: int = 100) -> Subgraph:
        """The graph around one node: the nodes within ``depth`` edges and the edges walked.

        Parameters
        ----------
        node : int or str
            A memory id, or a key: ``"memory:12"``, ``"topic:3"``, ``"session:<name>"``, ``"task:<id>"``.
        rel : str or list of str, optional
            Edge types to follow (IN_TOPIC, SUBTOPIC_OF, RELATED_TO, SIMILAR_TO, IN_SESSION, FOLLOWS,
            ABOUT, SOLVES, DERIVED_FROM); all by default.
        direction : {"both", "out", "in"}
            Follow edges leaving the node, entering it, or both.
        depth : int
            Steps (1 to 6).
        limit : int
            Nodes returned at most, besides the start (breadth-first order).

        Returns
        -------
        Subgraph
            ``nodes[0]`` is the start; ``edges`` are those walked.
        """
        with self._lock:
            graph = self._graph_for()
            start = key(*parse_key(node))  # walk() raises RecordNotFoundError for a missing start
            rels = g.check_rels(rel)
            direction, depth, limit = g.check_walk(direction, depth, limit)
            return graph.walk([start], rels, direction, depth, limit)

    def path(self, a: int | str, b: int | str, *, max_depth: int = 4,
             rel: str | Sequence[str] | None = None) -> Subgraph | None:
        """A shortest path between two nodes, ignoring edge direction (None if none within ``max_depth``).

        ``nodes`` run from ``a`` to ``b``; ``edges[i]`` joins ``nodes[i]`` and ``nodes[i + 1]``.
        """
        with self._lock:
            graph = self._graph_for()
            start, end = g.check_node(graph, a), g.check_node(graph, b)
            rels = g.check_rels(rel)
            _, max_depth, _ = g.check_walk("both", max_depth, 1)
            return graph.path(start, end, rels, max_depth)

    def subgraph(self, nodes: Sequence[int | str], *, depth: int = 1, rel: str | Sequence[str] | None = None,
                 limit: int = 1000) -> Subgraph:
        """The nodes given, those within ``depth`` edges of them (0: none) and the edges among them all."""
        with self._lock:
            graph = self._graph_for()
            if isinstance(nodes, (str, bytes)) or not isinstance(nodes, Sequence) or not nodes:
                raise InvalidInputError("nodes must be a non-empty list of memory ids or node keys")
            starts = list(dict.fromkeys(g.check_node(graph, n) for n in nodes))
            rels = g.check_rels(rel)
            if not isinstance(depth, int) or isinstance(depth, bool) or not 0 <= depth <= 6:
                raise InvalidInputError(f"depth must be an integer from 0 to 6, got {depth!r}")
            limit = v.check_k(limit, "limit")
            walked = graph.walk(starts, rels, "both", depth, limit)
            within = set(walked.keys)
            rows = {(r[0], r[1], r[2]): r for r in graph.rows(walked.keys, rels) if r[0] in within and r[2] in within}
            return Subgraph(walked.nodes, tuple(graph_edge(r) for r in rows.values()))

    def export_neo4j(self, uri: str | None = None, user: str | None = None, password: str | None = None,
                     database: str | None = None, *, restart: bool = False, progress: bool | None = None
                     ) -> dict[str, int]:
        """Copy the whole graph to a Neo4j server (``selfmem[neo4j]``), in resumable, idempotent batches.

        Parameters
        ----------
        uri, user, password, database : str, optional
            Default to ``SELFMEM_NEO4J_URI`` / ``_USER`` / ``_PASSWORD`` / ``_DATABASE``, then ``config.graph``.
        restart : bool
            Ignore the progress left by an interrupted export (``neo4j-export.json`` in the directory).
        progress : bool, optional
            Show a bar (default: on a terminal).

        Returns
        -------
        dict
            Edges per type and ``memories`` copied. Raises :class:`GraphError` if Neo4j fails.
        """
        v.check_flag(restart, "restart")
        v.check_flag(progress, "progress", optional=True)
        with self._lock:
            graph = self._graph_for()
            backend = Neo4jBackend(*credentials(uri, user, password, database, defaults=self.config.graph))
            n = self._live().count()
            try:
                with bar(total=n, desc="export to Neo4j", unit="memories",
                         enabled=show_progress(progress if progress is not None else self._progress, n,
                                               _AUTO_PROGRESS)) as shown:
                    return export(graph, backend, self.directory / EXPORT_STATE, restart=restart,
                                  progress=shown.update)
            finally:
                backend.close()

    def export(self, out: str | os.PathLike[str], format: str = "jsonl", *, progress: bool | None = None) -> int:
        """Write every record to a file; return how many were written (``memctl export PATH --format``).

        Parameters
        ----------
        out : str or path-like
            The file to write (replaced atomically).
        format : {"jsonl", "parquet"}
            JSON Lines (one record per line: id, text, kind, metadata, session, created_at, importance,
            parents, key, topic_ids, topic_path; :meth:`import_records` reads it back), or Parquet with
            the same columns plus each embedder's raw vectors as a ``FLOAT[dim]`` column named after the role.
        progress : bool, optional
            Show a bar (default: on a terminal, for 512 records or more).
        """
        v.check_flag(progress, "progress", optional=True)
        with self._lock:
            store = self._poll()
            n = store.count()
            roles = {role: emb.dim for role, emb in self._views.roles.items()}
            with bar(total=n, desc=f"export {format}", unit="memories",
                     enabled=show_progress(progress if progress is not None else self._progress, n,
                                           _AUTO_PROGRESS)) as shown:
                return export_records(store, out, format, roles, shown.update)

    def import_records(self, file: str | os.PathLike[str], *, kind: str = "note", session: str | None = None,
                       progress: bool | None = None) -> list[int]:
        """Add the records of a ``.jsonl`` file (as :meth:`export` writes it) or a text file (one per line).

        Every line is validated before anything is written. Records keep their session, time,
        importance, metadata and key; ``parents`` are mapped from the file's ``id`` values to the new
        ids (parents not in the file are dropped). Each run of lines with one session is added in one
        transaction; lines with a ``key`` are skipped when already stored, so a re-run after a failure
        completes an import without duplicating it.

        Parameters
        ----------
        file : str or path-like
        kind : str
            Kind of lines that name none.
        session : str, optional
            Put every record in this session (overrides the file's sessions).
        progress : bool, optional

        Returns
        -------
        list of int
            The new ids, in file order.
        """
        if session is not None:
            v.check_session(session)
        rows = read_records(file, kind)
        new_id: dict[int, int] = {}
        out: list[int] = []
        with self._lock:
            self._writable()
            for group_session, group in session_groups(rows, session):
                ids = self.add_many(
                    [r["text"] for r in group], kind=[r["kind"] for r in group],
                    metadata=[r["metadata"] for r in group], session=group_session,
                    importance=[r["importance"] for r in group],
                    parents=[[new_id[p] for p in r["parents"] if p in new_id] for r in group],
                    created_at=None if any(r["created_at"] is None for r in group) else [r["created_at"] for r in group],
                    keys=[r["key"] for r in group], progress=progress)
                for r, i in zip(group, ids):
                    if r["id"] is not None:
                        new_id[r["id"]] = i
                out += ids
        return out

    def to_networkx(self) -> Any:
        """The whole knowledge graph as a ``networkx.MultiDiGraph`` (the same nodes and edges a Neo4j export
        writes: node keys like ``"memory:12"``, node attribute ``type``, edge key and attribute ``rel``)."""
        with self._lock:
            graph = self._graph_for()
            sink = NetworkxBackend()
            export(graph, sink, None)
            return sink.graph

    def _graph_for(self) -> Any:
        self._poll()
        if not self._graph.available:
            raise ReadOnlyError("this memory has no graph yet (made by an older selfmem); open it once without "
                                "read_only to build it")
        return self._graph.graph

    def points(self, limit: int | None = None, *, seed: int = 0) -> Points:
        """Memories with their index vectors and topics: all of them, or a uniform sample of ``limit``.

        Parameters
        ----------
        limit : int, optional
            At most this many (a random sample, ``seed``); None for every memory.
        seed : int

        Returns
        -------
        Points
            ``ids`` (n,), ``vectors`` (n, dim), texts, kinds, sessions, leaf and top-level topics.
        """
        if limit is not None:
            limit = v.check_k(limit, "limit")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise InvalidInputError(f"seed must be an integer, got {seed!r}")
        with self._lock:
            store = self._poll()
            ids = store.ids()
            total = len(ids)
            if limit is not None and limit < total:
                ids = np.sort(np.random.default_rng(seed).choice(ids, size=limit, replace=False))
            recs = store.get(ids.tolist())
            leaf = store.top_topics(ids.tolist())
            parent = {t.id: t.parent for t in self._topics.nodes()}
            topics = np.array([leaf.get(int(i), -1) for i in ids], dtype=np.int64)
            vecs = self._vectors.index.vectors(ids) if len(ids) else np.zeros((0, self._vectors.index.dim), np.float32)
            return Points(ids=ids, vectors=np.asarray(vecs, dtype=np.float32),
                          texts=tuple(recs[int(i)].text for i in ids), kinds=tuple(recs[int(i)].kind for i in ids),
                          sessions=tuple(recs[int(i)].session or "" for i in ids), topics=topics,
                          tops=np.array([(lineage(parent, int(t)) or [int(t)])[0] if t >= 0 else -1 for t in topics],
                                        dtype=np.int64), total=total)

    def sessions(self) -> list[dict[str, Any]]:
        """Every session in natural order (s2 before s10): ``session`` (``""`` for records outside one),
        ``records``, ``first`` and ``last`` (ISO times) and ``kinds``."""
        with self._lock:
            return h.session_rows(self._poll())

    def topics(self) -> list[Topic]:
        """Every topic of the tree (leaves first, then super-topics), without member lists."""
        with self._lock:
            self._poll()
            return self._topics.nodes()

    def topic(self, id: int) -> Topic:
        """One topic with its member record ids (a super-topic's members are its leaves' members)."""
        with self._lock:
            self._poll()
            return self._topics.topic(v.check_id(id))

    def stats(self) -> Stats:
        """Counts, embedders, index, topics, disk use, last rebuild and health of this memory (``memctl inspect``)."""
        with self._lock:
            store = self._poll()
            index = self._vectors.index
            n = store.count()
            levels, provisional = h.topic_levels(store)
            graph = self._graph.available
            return Stats(
                path=str(self.directory), records=n, kinds=store.group_counts("kind"),
                sessions=dict(sorted(store.group_counts("session").items(), key=lambda kv: h.natural_key(kv[0]))),
                embedders={role: json.loads(fp) for role, fp in store.meta_items("embedder.").items()},
                index={"kind": index.kind, "size": len(index), "dim": index.dim, "mode": self._views.effective_mode,
                       **({"nlist": index.nlist, "nprobe": index.nprobe, "rerank": index.rerank,
                           "n_trained": index.n_trained} if hasattr(index, "nlist") else {})},
                config=self.config.to_dict(), notes=tuple(note for part in self._parts for note in part.notes()),
                graph=dict(self._graph.graph.counts()) if graph else {},
                topic_levels=levels, provisional_topics=provisional, disk=h.disk_use(self.directory),
                last_rebuild=h.last_rebuild(store),
                view=h.view_info(store.view_manifest if self.read_only else self._view.manifest),
                health=h.health(path=str(self.directory), records=n, whitener=self._views.whitener,
                                views_mode=self._views.mode, own=self._views.own is not None, cfg=self.config,
                                levels=levels, provisional=provisional, topics_fitted=self._topics.state.fitted,
                                graph=graph, saved_index=h.saved_index_count(self.directory),
                                writable=not self.read_only))

    # -- maintenance ------------------------------------------------------------
    def wait(self) -> None:
        """Block until background refits (whitening, index, topics) are finished and swapped in."""
        with self._lock:
            self._live()
            while any(part.busy for part in self._parts):
                for part in self._parts:
                    part.wait()
                self._maintain()

    def rebuild(self, *, reembed: bool = False) -> None:
        """Refit every derived part from the store now: whitening, index, keywords, topics, tree, labels, graph.

        Parameters
        ----------
        reembed : bool
            Also re-run every embedder over every record's text first (needed after a model
            change; roles already re-embedded when this Memory was opened are not run again).
        """
        v.check_flag(reembed, "reembed")
        with self._lock:
            self._writable()
            if reembed:
                roles = [r for r in self._views.roles if r not in self._reembedded]
                self._reembedded |= reembed_roles(self._store, self._views, roles, self._progress)
            h.mark_rebuild(self._store)
            for part in self._parts:
                part.rebuild()

    def close(self) -> None:
        """Finish background refits, save derived files and close the store. Idempotent."""
        with self._lock:
            if self._store is None:
                return
            failed: OSError | None = None
            try:
                if not self.read_only:
                    self.wait()
                    for part in self._parts:
                        try:
                            part.save()
                        except OSError as exc:  # derived files only: the store holds every acknowledged record
                            failed = failed or exc
            finally:
                self._close_store()
            if failed is not None:
                raise StorageError(f"the memory is closed, but derived files could not be saved ({failed}); the "
                                   "store is intact and they are rebuilt when the memory is next opened") from failed

    def _close_store(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
            self._release()
        ctx = getattr(self, "_ctx", None)
        if ctx is not None:
            ctx.cleanup()
        for private in (self._copy, self._pin):
            if private is not None:
                shutil.rmtree(private, ignore_errors=True)
        self._copy = self._pin = None

    # One writer per directory in this process too: DuckDB's file lock only keeps other processes out,
    # and two writable handles in one process would each miss the other's adds.
    _writers: dict[str, weakref.ref] = {}
    _writers_lock = threading.Lock()

    def _publish_now(self) -> None:
        """Publish the read view now if anything changed since its last publication (for a reader in this process)."""
        with self._lock:
            if self._store is not None:
                self._view.publish_pending()

    @classmethod
    def _writer_of(cls, directory: Any) -> Memory | None:
        """The open writable Memory of ``directory`` in this process, if any (call with ``_writers_lock``)."""
        holder = cls._writers.get(os.path.realpath(directory))
        other = holder() if holder is not None else None
        return other if other is not None and getattr(other, "_store", None) is not None else None

    def _claim(self) -> None:
        claim = os.path.realpath(self.directory)
        with Memory._writers_lock:
            if Memory._writer_of(self.directory) is not None:
                raise MemoryLockedError(f"{self.directory} is already open for writing in this process; use that "
                                        "Memory object, close it first, or open this one with read_only=True")
            Memory._writers[claim] = weakref.ref(self)  # a handle dropped without close() frees the claim
        self._claimed = claim

    def _release(self) -> None:
        claim = getattr(self, "_claimed", None)
        if claim is not None:
            with Memory._writers_lock:
                holder = Memory._writers.get(claim)
                if holder is not None and holder() is self:
                    del Memory._writers[claim]
            self._claimed = None

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
