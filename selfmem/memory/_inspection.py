"""Looking at a memory: ``get``, ``stats``, ``points``, ``sessions``, ``topics`` and ``topic``."""

from __future__ import annotations

import json

import numpy as np

from .._errors import InvalidInputError, RecordNotFoundError
from .._types import IndexInfo, Points, Record, SessionRow, Stats, Topic
from ..clustering._tree import lineage
from . import _health as h
from . import _validate as v
from ._state import MemoryState

__all__ = ["Inspector"]


class Inspector:
    """The read-only views of one handle's state (the caller holds the handle's guard)."""

    def __init__(self, state: MemoryState) -> None:
        self.state = state

    def get(self, id: int) -> Record:
        """``Memory.get``: the record, or RecordNotFoundError."""
        rid = v.check_id(id)
        rec = self.state.live().get([rid]).get(rid)
        if rec is None:
            raise RecordNotFoundError(f"no record with id {rid}")
        return rec

    def points(self, limit: int | None = None, *, seed: int = 0) -> Points:
        """``Memory.points``: every memory, or a uniform sample of ``limit``, with vectors and topics."""
        if limit is not None:
            limit = v.check_k(limit, "limit")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise InvalidInputError(f"seed must be an integer, got {seed!r}")
        s = self.state
        store = s.live()
        ids = store.ids()
        total = len(ids)
        if limit is not None and limit < total:
            ids = np.sort(np.random.default_rng(seed).choice(ids, size=limit, replace=False))
        recs = store.get(ids.tolist())
        leaf = store.top_topics(ids.tolist())
        parent = {t.id: t.parent for t in s.topics.nodes()}
        topics = np.array([leaf.get(int(i), -1) for i in ids], dtype=np.int64)
        index = s.vectors.index
        vecs = index.vectors(ids) if len(ids) else np.zeros((0, index.dim), np.float32)
        return Points(ids=ids, vectors=np.asarray(vecs, dtype=np.float32),
                      texts=tuple(recs[int(i)].text for i in ids), kinds=tuple(recs[int(i)].kind for i in ids),
                      sessions=tuple(recs[int(i)].session or "" for i in ids), topics=topics,
                      tops=np.array([(lineage(parent, int(t)) or [int(t)])[0] if t >= 0 else -1 for t in topics],
                                    dtype=np.int64), total=total)

    def sessions(self) -> list[SessionRow]:
        """``Memory.sessions``: every session in natural order with its counts, times and kinds."""
        return h.session_rows(self.state.live())

    def topics(self) -> list[Topic]:
        """``Memory.topics``: every topic of the tree, without member lists."""
        return self.state.topics.nodes()

    def topic(self, id: int) -> Topic:
        """``Memory.topic``: one topic with its member record ids."""
        return self.state.topics.topic(v.check_id(id))

    def stats(self) -> Stats:
        """``Memory.stats``: counts, embedders, index, topics, disk use, last rebuild and health."""
        s = self.state
        store = s.live()
        index = s.vectors.index
        n = store.count()
        levels, provisional = store.topic_levels()
        graph = s.graph.available
        return Stats(
            path=str(s.directory), records=n, kinds=store.group_counts("kind"),
            sessions=dict(sorted(store.group_counts("session").items(), key=lambda kv: h.natural_key(kv[0]))),
            embedders={role: json.loads(fp) for role, fp in store.meta_items("embedder.").items()},
            index=IndexInfo(kind=index.kind, size=len(index), dim=index.dim, mode=s.views.effective_mode,
                            **index.describe()),
            config=s.config.to_dict(), notes=tuple(note for part in s.parts for note in part.notes()),
            graph=dict(s.graph.graph.counts()) if graph else {},
            topic_levels=levels, provisional_topics=provisional, disk=h.disk_use(s.directory),
            last_rebuild=h.last_rebuild(store),
            view=h.view_info(store.view_manifest if s.read_only else s.readview.manifest),
            health=h.health(path=str(s.directory), records=n, whitener=s.views.whitener,
                            views_mode=s.views.mode, own=s.views.own is not None, cfg=s.config,
                            levels=levels, provisional=provisional, topics_fitted=s.topics.state.fitted,
                            graph=graph, saved_index=h.saved_index_count(s.directory),
                            writable=not s.read_only))
