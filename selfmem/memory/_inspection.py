"""Looking at a memory: ``stats``, ``points``, ``sessions``, ``topics`` and ``topic`` (a method group of ``Memory``)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from .._errors import InvalidInputError
from .._types import Points, Stats, Topic
from ..clustering._tree import lineage
from . import _health as h
from . import _validate as v
from ._core import MemoryCore, guarded

__all__ = ["InspectMethods"]


class InspectMethods(MemoryCore):
    """The read-only views of a memory's state (mixed into :class:`selfmem.Memory`)."""

    @guarded()
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
        store = self._live()
        ids = store.ids()
        total = len(ids)
        if limit is not None and limit < total:
            ids = np.sort(np.random.default_rng(seed).choice(ids, size=limit, replace=False))
        recs = store.get(ids.tolist())
        leaf = store.top_topics(ids.tolist())
        parent = {t.id: t.parent for t in self._topics.nodes()}
        topics = np.array([leaf.get(int(i), -1) for i in ids], dtype=np.int64)
        index = self._vectors.index
        vecs = index.vectors(ids) if len(ids) else np.zeros((0, index.dim), np.float32)
        return Points(ids=ids, vectors=np.asarray(vecs, dtype=np.float32),
                      texts=tuple(recs[int(i)].text for i in ids), kinds=tuple(recs[int(i)].kind for i in ids),
                      sessions=tuple(recs[int(i)].session or "" for i in ids), topics=topics,
                      tops=np.array([(lineage(parent, int(t)) or [int(t)])[0] if t >= 0 else -1 for t in topics],
                                    dtype=np.int64), total=total)

    @guarded()
    def sessions(self) -> list[dict[str, Any]]:
        """Every session in natural order (s2 before s10): ``session`` (``""`` for records outside one),
        ``records``, ``first`` and ``last`` (ISO times) and ``kinds``."""
        return h.session_rows(self._live())

    @guarded()
    def topics(self) -> list[Topic]:
        """Every topic of the tree (leaves first, then super-topics), without member lists."""
        return self._topics.nodes()

    @guarded()
    def topic(self, id: int) -> Topic:
        """One topic with its member record ids (a super-topic's members are its leaves' members)."""
        return self._topics.topic(v.check_id(id))

    @guarded()
    def stats(self) -> Stats:
        """Counts, embedders, index, topics, disk use, last rebuild and health of this memory (``memctl inspect``)."""
        store = self._live()
        index = self._vectors.index
        n = store.count()
        levels, provisional = store.topic_levels()
        graph = self._graph.available
        return Stats(
            path=str(self.directory), records=n, kinds=store.group_counts("kind"),
            sessions=dict(sorted(store.group_counts("session").items(), key=lambda kv: h.natural_key(kv[0]))),
            embedders={role: json.loads(fp) for role, fp in store.meta_items("embedder.").items()},
            index={"kind": index.kind, "size": len(index), "dim": index.dim, "mode": self._views.effective_mode,
                   **index.describe()},
            config=self.config.to_dict(), notes=tuple(note for part in self._parts for note in part.notes()),
            graph=dict(self._graph.graph.counts()) if graph else {},
            topic_levels=levels, provisional_topics=provisional, disk=h.disk_use(self.directory),
            last_rebuild=h.last_rebuild(store),
            view=h.view_info(store.view_manifest if self.read_only else self._readview.manifest),
            health=h.health(path=str(self.directory), records=n, whitener=self._views.whitener,
                            views_mode=self._views.mode, own=self._views.own is not None, cfg=self.config,
                            levels=levels, provisional=provisional, topics_fitted=self._topics.state.fitted,
                            graph=graph, saved_index=h.saved_index_count(self.directory),
                            writable=not self.read_only))
