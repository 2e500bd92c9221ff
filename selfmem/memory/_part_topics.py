"""The topic part: the fitted topic model, the stored topic tree and every record's memberships.

Refit rules (:meth:`TopicPart.maintain`): topics are fitted when the memory first reaches
``topics.min_records`` records, refitted when the index-vector space changed (a new whitening),
and, with ``topics.auto_rebuild``, when a rebuild is due (too many provisional topics, or 2x growth).
Between fits each new record joins a topic or opens a provisional one (Chinese-restaurant rule);
its membership is written in the records' own transaction. A fit runs in the background on a read
snapshot; the swap assigns the records added meanwhile and replaces the stored tree in one
transaction.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence

import numpy as np

from .._errors import RecordNotFoundError
from .._types import Topic, TopicRow
from ..clustering._topics import TOPICS_FILE, TopicState
from ._parts import AddBatch, Part, PartContext, index_vectors
from ..retrieval._views import Views
from ..store import Store

__all__ = ["TopicPart"]

_Fit = tuple[TopicState, list[TopicRow], np.ndarray, np.ndarray, np.ndarray]
_MERGE = 4096
"""Assignments held in a dict before they join the arrays (one O(n) merge per this many adds)."""


class _TopTopics:
    """Every record's most probable topic in memory: arrays sorted by id, and a dict of the latest assignments.

    Built from a refit's result, or read from the store at the first lookup after opening.
    """

    def __init__(self, ids: np.ndarray | None = None, tids: np.ndarray | None = None) -> None:
        self._ids: np.ndarray | None = None
        self._tids: np.ndarray | None = None
        if ids is not None and tids is not None:
            order = np.argsort(ids, kind="stable")
            self._ids, self._tids = np.asarray(ids, np.int64)[order], np.asarray(tids, np.int64)[order]
        self._new: dict[int, int] = {}

    def assigned(self, ids: np.ndarray | Sequence[int], tids: Sequence[int]) -> None:
        """Note the topics given to newly added records."""
        self._new.update(zip((int(i) for i in ids), (int(t) for t in tids)))

    def _table(self, store: Store) -> tuple[np.ndarray, np.ndarray]:
        if self._ids is None or self._tids is None:
            self._ids, self._tids = store.top_topic_table()
        if len(self._new) > _MERGE:
            new_ids = np.fromiter(self._new.keys(), np.int64, len(self._new))
            new_tids = np.fromiter(self._new.values(), np.int64, len(self._new))
            keep = ~np.isin(self._ids, new_ids)
            ids, tids = np.concatenate([self._ids[keep], new_ids]), np.concatenate([self._tids[keep], new_tids])
            order = np.argsort(ids, kind="stable")
            self._ids, self._tids, self._new = ids[order], tids[order], {}
        return self._ids, self._tids

    def lookup(self, ids: Sequence[int], store: Store) -> dict[int, int]:
        """The topics of ``ids`` (those with none absent)."""
        table_ids, table_tids = self._table(store)
        q = np.asarray(ids, dtype=np.int64)
        out: dict[int, int] = {}
        if len(table_ids) and len(q):
            pos = np.minimum(np.searchsorted(table_ids, q), len(table_ids) - 1)
            hit = table_ids[pos] == q
            out = dict(zip(q[hit].tolist(), table_tids[pos[hit]].tolist()))
        for i in q.tolist():
            if i in self._new:
                out[i] = self._new[i]
        return out

    def members(self, tids: np.ndarray | Sequence[int], store: Store) -> np.ndarray:
        """Ids of the records whose topic is one of ``tids``, ascending."""
        table_ids, table_tids = self._table(store)
        got = table_ids[np.isin(table_tids, np.asarray(tids, dtype=np.int64))]
        if self._new:  # the latest assignments win over the table's
            got = got[~np.isin(got, np.fromiter(self._new.keys(), np.int64, len(self._new)))]
            wanted = set(np.asarray(tids).tolist())
            fresh = [i for i, t in self._new.items() if t in wanted]
            if fresh:
                got = np.union1d(got, np.asarray(fresh, dtype=np.int64))
        return got


class TopicPart(Part):
    """Topics of one memory (``self.state`` holds the fitted model)."""

    name = "topic model"
    files = (TOPICS_FILE,)

    def __init__(self, ctx: PartContext) -> None:
        super().__init__(ctx)
        self.state = TopicState(ctx.config.topics, ctx.directory)
        fit = dataclasses.asdict(ctx.config.topics)
        for rule in ("min_records", "provisional_limit", "growth_limit", "auto_rebuild"):
            fit.pop(rule)  # when to refit, not what a fit is
        self._settings = json.dumps(fit, sort_keys=True)
        self._top = _TopTopics()

    @property
    def current(self) -> bool:
        """True when the model is fitted in the index-vector space now in use."""
        return self.state.fitted and self.state.signature == self._signature(self.ctx.space())

    def _signature(self, space: str) -> str:
        """What a fitted model depends on: the index-vector space, the fitting settings and this store."""
        return space + "|" + self._settings + "|" + self.ctx.store.store_id

    # -- contract -------------------------------------------------------------------
    def open(self) -> None:
        self._top = _TopTopics()
        leaves = sum(1 for t in self.ctx.store.topics() if t.level == 0)
        self.state.load(self._signature(self.ctx.space()), leaves)

    def write(self, batch: AddBatch) -> Callable[[Store], None] | None:
        if not self.state.fitted or self.state.signature != self._signature(batch.space):
            return None
        if self.ctx.store.shared:  # each process's model would open provisional topics the others do not know:
            return None            # on a shared store new records get their topics at the next refit
        assigned, opened = self.state.assign(batch.vectors)

        def write(store: Store) -> None:
            store.add_topics(opened)
            store.add_memberships(batch.ids, [t for t, _ in assigned], [p for _, p in assigned])
            self._top.assigned(batch.ids, [t for t, _ in assigned])  # ids of a failed add are never used

        return write

    def maintain(self) -> None:
        if not self.ctx.writable or self.refit.running:
            return
        n = self.ctx.store.count()
        cfg = self.ctx.config.topics
        if n < cfg.min_records:
            return
        if not self.current or (cfg.auto_rebuild and self.state.rebuild_reason(n)):
            views = self.ctx.views.with_whitener(self.ctx.views.whitener)  # fixed for the job's lifetime

            def job() -> _Fit:
                with self.reading() as store:
                    return self._fit(store, views)

            self.refit.start(job, self._set)

    def rebuild(self) -> None:
        self.refit.wait()
        if self.ctx.store.count() >= self.ctx.config.topics.min_records:
            self._set(self._fit(self.ctx.store, self.ctx.views))

    def save(self) -> None:
        self.state.save()

    def notes(self) -> list[str]:
        n = self.ctx.store.count()
        cfg = self.ctx.config.topics
        if not self.state.fitted:
            if n < cfg.min_records:
                return [f"topics not fitted yet ({n} records < {cfg.min_records})"]
            if self.refit.running:
                return ["topics are being fitted in the background; the stored topics are listed meanwhile"]
            return ["topic model file missing or stale (UMAP reducers are never saved; older versions used "
                    "another format): the stored topics are listed; opening the memory for writing refits it"]
        reason = self.state.rebuild_reason(n)
        return [f"rebuild suggested: {reason} (Memory.rebuild() / memctl rebuild)"] if reason else []

    # -- fitting --------------------------------------------------------------------
    def _fit(self, store: Store, views: Views) -> _Fit:
        state = TopicState(self.ctx.config.topics, self.ctx.directory)
        ids, vecs = self.ctx.index_vectors(store, views)
        _, texts = store.texts()
        rows, tids, probs = state.fit(ids, vecs, texts, self._signature(self.ctx.space(views)))
        return state, rows, ids, tids, probs

    def _set(self, fit: _Fit) -> None:
        """Swap in a fit (writer's thread): assign records added since its snapshot, replace the stored tree."""
        state, rows, ids, tids, probs = fit
        store = self.ctx.store
        live = store.ids()
        keep = np.isin(ids, live)
        ids, tids, probs = ids[keep], tids[keep], probs[keep]
        missing = np.setdiff1d(live, ids)
        if len(missing) and state.model is not None and state.signature == self._signature(self.ctx.space()):
            mids, vecs = index_vectors(store, self.ctx.views, missing)
            mt, mp = state.model.memberships(vecs, tids.shape[1])
            ids, tids, probs = np.concatenate([ids, mids]), np.vstack([tids, mt]), np.vstack([probs, mp])
        store.replace_topics(rows, ids, tids, probs)
        self._top = _TopTopics(ids, tids[:, 0]) if len(ids) else _TopTopics()
        self.state = state
        self.save_after_swap()

    # -- reading --------------------------------------------------------------------
    def route(self, qvec: np.ndarray, n: int) -> np.ndarray | None:
        """Ids of the records in the n topics nearest the query vector (dim,); None without current topics."""
        if not self.current:
            return None
        tids = self.state.route(qvec, n)
        if not self._held():
            return self.ctx.store.topic_members(tids)
        return self._top.members(tids, self.ctx.store)

    def top_of(self, ids: Sequence[int]) -> dict[int, int]:
        """Each record's most probable topic (records without one are absent).

        The only writer of a store holds the table in memory (read once, kept with its own assignments
        and refits): a search reads no topic from the store. Other handles read the store.
        """
        if not self._held():
            return self.ctx.store.top_topics(ids)
        return self._top.lookup(ids, self.ctx.store)

    def _held(self) -> bool:
        """True when no one else changes this store's memberships: a writable handle of an unshared store."""
        return bool(self.ctx.writable) and not self.ctx.store.shared

    def nodes(self) -> list[Topic]:
        """Every stored topic, leaves first, with live sizes."""
        store = self.ctx.store
        rows = store.topics()
        live = store.topic_sizes()
        children: dict[int, list[int]] = {}
        for r in rows:
            if r.parent is not None:
                children.setdefault(r.parent, []).append(r.id)
        size: dict[int, int] = {}
        for r in rows:  # rows come leaves first, so children are counted before parents
            size[r.id] = live.get(r.id, 0) if r.level == 0 else sum(size.get(c, 0) for c in children.get(r.id, []))
        return [Topic(id=r.id, level=r.level, parent=r.parent, children=tuple(children.get(r.id, ())),
                      size=size[r.id], label=r.label, keywords=r.keywords, provisional=r.provisional) for r in rows]

    def topic(self, tid: int) -> Topic:
        """One topic with its member record ids (a super-topic's members are its leaves' members)."""
        nodes = {t.id: t for t in self.nodes()}
        if tid not in nodes:
            raise RecordNotFoundError(f"no topic with id {tid}; see Memory.topics()")
        leaves, stack = [], [tid]
        while stack:
            t = nodes[stack.pop()]
            leaves += [t.id] if t.level == 0 else []
            stack += list(t.children)
        members = tuple(int(i) for i in self.ctx.store.topic_members(leaves))
        return dataclasses.replace(nodes[tid], members=members)
