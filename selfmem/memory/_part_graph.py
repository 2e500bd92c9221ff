"""The graph part: the knowledge graph kept in the store, in step with every add and delete.

Edges of new records (FOLLOWS, ABOUT, SOLVES, DERIVED_FROM, MENTIONS to their entities and SIMILAR_TO to
their nearest stored memories) are written in the records' own transaction, and a delete drops a record's edges in the
delete's transaction, so the graph can never disagree with the store. Topic edges are read off the
topic tables; RELATED_TO is recomputed from the centroids whenever a topic refit is swapped in
(``Store.topics_generation`` counts them).
``rebuild()`` recomputes every stored edge from the records and the index in one transaction.

With ``graph.mirror = "neo4j"`` each write also adds a journal row (same transaction); after the
commit the journal is copied to Neo4j and cleared. If Neo4j is unreachable the rows wait (retried
at most every ``RETRY_SECONDS``) and nothing local is held up.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable, Sequence

import numpy as np

from .._errors import SelfmemError
from ..graph._build import EdgeRow, mention_edges, record_edges, related_topics, similar_edges
from ..graph._embedded import EmbeddedGraph
from ..graph._mirror import EXPORT_STATE, Neo4jMirror
from ._part_vectors import VectorPart
from ._parts import AddBatch, Part, PartContext
from ..store import Store

__all__ = ["GraphPart", "GRAPH_VERSION"]

GRAPH_VERSION = "2"  # 2: the entity layer (MENTIONS)
RETRY_SECONDS = 30.0


class GraphPart(Part):
    """The knowledge graph of one memory (``self.graph`` reads it)."""

    name = "knowledge graph"
    files = (EXPORT_STATE,)  # the edges live in the store; this is a Neo4j export's resume point

    def __init__(self, ctx: PartContext, vectors: VectorPart) -> None:
        super().__init__(ctx)
        self.vectors = vectors
        self.cfg = ctx.config.graph
        self.available = ctx.store.has_table("edges")
        # the edges between memories held in memory where this handle is the store's one writer
        self.graph = EmbeddedGraph(ctx.store.graph, cache_links=ctx.writable and not ctx.store.shared)
        self._generation = -1
        self.mirror: Neo4jMirror | None = None
        self._retry_at = 0.0

    # -- contract -------------------------------------------------------------------
    def open(self) -> None:
        store = self.ctx.store
        if self.ctx.writable and self.cfg.enabled and store.get_meta("graph.version") != GRAPH_VERSION:
            self.rebuild()  # a memory made before the graph existed (or with the graph switched off)
        self._refresh_related()
        if self.ctx.writable and self.cfg.mirror == "neo4j":
            self.mirror = Neo4jMirror.from_config(self.cfg)
            self._sync()

    def write(self, batch: AddBatch) -> Callable[[Store], None] | None:
        if not (self.cfg.enabled and self.available):
            return None
        similar = self._similar(batch.ids, batch.vectors, within=True)
        sessions = [r.session for r in batch.records]
        metadata = [r.metadata for r in batch.records]
        parents = [r.parents for r in batch.records]
        mentions = mention_edges(batch.ids.tolist(), [r.text for r in batch.records]) if self.cfg.entities else []

        def write(store: Store) -> None:
            last = self.graph.last_in_sessions(sorted({s for s in sessions if s is not None}), int(batch.ids.min()))
            rows = record_edges(batch.ids.tolist(), sessions, metadata, parents, last,
                                task_keys=self.cfg.task_keys, solves_key=self.cfg.solves_key)
            self.graph.insert(rows + mentions + similar)
            if self.mirror is not None:
                self.graph.journal("upsert", batch.ids.tolist())

        return write

    def write_delete(self, ids: Sequence[int] | np.ndarray) -> Callable[[Store], None] | None:
        if not self.available:
            return None

        gone = [int(i) for i in ids]

        def write(store: Store) -> None:
            self.graph.delete_memories(gone)
            if self.mirror is not None:
                self.graph.journal("delete", gone)

        return write

    def on_add(self, batch: AddBatch) -> None:
        self._sync()

    def on_delete(self, ids: Sequence[int] | np.ndarray) -> None:
        self._sync()

    def poll(self) -> bool:
        if self._generation != self.ctx.store.topics_generation:
            self._refresh_related()
            if self.mirror is not None:
                self.graph.journal("topics", [])
                self._sync()
        return False

    def rebuild(self) -> None:
        """Recompute every stored edge from the records and the index, in one transaction."""
        store = self.ctx.store
        if not self.available:
            return
        with store.transaction("rebuild the graph"):
            self.graph.clear()
            if self.cfg.enabled:
                self._rebuild_edges(store)
            store.set_meta("graph.version", GRAPH_VERSION if self.cfg.enabled else "off")
            if self.mirror is not None:
                self.graph.journal("topics", [])
        self._refresh_related()
        self._sync()

    def notes(self) -> list[str]:
        out = []
        if not self.available:
            out.append("no graph tables yet (a memory from an older selfmem opened read-only): open it for writing "
                       "once to build the graph")
        elif self.cfg.enabled and self.ctx.store.get_meta("graph.version") != GRAPH_VERSION:
            out.append("the graph is not built (graph.enabled was off): Memory.rebuild() builds it")
        if self.mirror is not None and self.available:
            n = len(self.graph.pending(1))
            if n:
                out.append(f"the Neo4j mirror is behind ({self.mirror.error or 'catching up'}); it catches up at the "
                           "next write, or run memctl export PATH --format neo4j")
        return out

    # -- helpers --------------------------------------------------------------------
    def _similar(self, ids: np.ndarray, vectors: np.ndarray, *, within: bool) -> list[EdgeRow]:
        cfg, index = self.cfg, self.vectors.index
        if cfg.similar_k == 0:
            return []
        usable = len(index) > 0 and index.dim == vectors.shape[1]

        def search(q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
            if not usable:
                return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
            found: tuple[np.ndarray, np.ndarray] = index.search(q, k)
            return found

        return similar_edges(ids, vectors, search, cfg.similar_k, cfg.similar_min, within=within)

    def _rebuild_edges(self, store: Store) -> None:
        ids = store.ids()
        live = set(ids.tolist())  # a deleted parent is still named in its children's parents column
        last = -1
        while chunk := store.page(last, 20_000):
            rows = record_edges([r.id for r in chunk], [r.session for r in chunk], [json.loads(r.metadata) for r in chunk],
                                [[p for p in r.parents or () if p in live] for r in chunk], self.graph.last_in_sessions(
                                    sorted({r.session for r in chunk if r.session is not None}), chunk[0].id),
                                task_keys=self.cfg.task_keys, solves_key=self.cfg.solves_key)
            if self.cfg.entities:
                rows += mention_edges([r.id for r in chunk], [r.text for r in chunk])
            self.graph.insert(rows)
            last = chunk[-1].id
        for lo in range(0, len(ids), 20_000):
            part = ids[lo:lo + 20_000]
            pids, vecs = self.ctx.index_vectors(store, self.ctx.views, part)
            self.graph.insert(self._similar(pids, vecs, within=False))

    def _refresh_related(self) -> None:
        store = self.ctx.store
        self._generation = store.topics_generation
        rows = [t for t in store.topics() if not t.provisional] if self.available else []
        self.graph.related = related_topics([t.id for t in rows], [t.level for t in rows],
                                            np.array([t.centroid for t in rows]), self.cfg.related_min) if rows else []

    def _sync(self) -> None:
        """Copy the journal to the mirror (no-op without one, or while it is down and not yet due)."""
        if self.mirror is None or time.monotonic() < self._retry_at:
            return
        try:
            self.mirror.sync(self.graph)
        except SelfmemError as exc:
            self._retry_at = time.monotonic() + RETRY_SECONDS
            warnings.warn(f"Neo4j mirror: {exc}; the changes wait in the journal and are copied later",
                          RuntimeWarning, stacklevel=4)
