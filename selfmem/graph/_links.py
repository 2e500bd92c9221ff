"""The stored edges between memories, held in memory: a search's graph expansion without a store query.

A search expands its best hits along FOLLOWS (and, when asked, DERIVED_FROM and SIMILAR_TO) edges. Asking
the store for the edges of two memories is two index lookups in DuckDB, 1.3 ms at 300k memories plus the
rows' Python objects; the same answer from sorted arrays held by the writer costs microseconds.

The arrays are read once, in one columnar query, the first time they are needed. Edges the writer inserts
afterwards go to a short list merged into the arrays when it grows; a delete or a clear drops everything
(read again on the next search: deletes are rare, and relinking a session's chain around deleted memories
is the store's business). Only a handle that is its store's one writer may hold them: another process's
edges would not be seen (the caller decides; ``EmbeddedGraph(cache_links=...)``). An edge inserted in a
transaction that then rolls back stays listed: it names a record id that the store never hands out again,
so the expansion, which reads the records, finds nothing there and skips it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["MemoryLinks", "LINK_RELS", "TASK_RELS"]

LINK_RELS = ("FOLLOWS", "DERIVED_FROM", "SIMILAR_TO")
"""The stored edge types between two memories that are held."""
TASK_RELS = ("ABOUT", "SOLVES")
"""The stored edge types from a memory to a task that are held."""

_MERGE_AT = 4096  # inserted edges kept aside before the arrays are rebuilt with them


class _Arrays:
    """Edges as parallel arrays with orders by source and by destination."""

    def __init__(self, src: np.ndarray, rel: np.ndarray, dst: np.ndarray, weight: np.ndarray) -> None:
        self.src, self.rel, self.dst, self.weight = src, rel, dst, weight
        self.by_src = np.argsort(src, kind="stable")
        self.by_dst = np.argsort(dst, kind="stable")
        self.src_sorted, self.dst_sorted = src[self.by_src], dst[self.by_dst]

    def touching(self, ids: np.ndarray) -> np.ndarray:
        """Positions of the edges with an end in ``ids`` (a source match first, then a destination match)."""
        return np.concatenate([self.outgoing(ids), self.incoming(ids)])

    def outgoing(self, ids: np.ndarray) -> np.ndarray:
        """Positions of the edges whose source is one of ``ids`` (sorted, unique)."""
        return _between_bounds(self.by_src, self.src_sorted, ids)

    def incoming(self, ids: np.ndarray) -> np.ndarray:
        """Positions of the edges whose destination is one of ``ids`` (sorted, unique)."""
        return _between_bounds(self.by_dst, self.dst_sorted, ids)


def _between_bounds(order: np.ndarray, sorted_: np.ndarray, ids: np.ndarray) -> np.ndarray:
    lo = np.searchsorted(sorted_, ids, side="left")
    hi = np.searchsorted(sorted_, ids, side="right")
    parts = [order[a:b] for a, b in zip(lo.tolist(), hi.tolist()) if b > a]
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


class MemoryLinks:
    """The memory-to-memory edges and the memory-to-task edges (ABOUT, SOLVES) of one store, loaded on first use.

    Parameters
    ----------
    load : callable
        Returns every held edge between memories as arrays ``(src ids int64, rel codes int8, dst ids int64,
        weights)``, shape (n,) each, the codes indexing :data:`LINK_RELS`.
    load_tasks : callable
        Returns every ABOUT and SOLVES edge as ``(memory ids int64, rel codes int8 (:data:`TASK_RELS`),
        task keys (str), weights)``.
    """

    def __init__(self, load: Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
                 load_tasks: Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]) -> None:
        self._load, self._load_tasks = load, load_tasks
        self._arrays: _Arrays | None = None
        self._tasks: _Arrays | None = None
        self._names: list[str] = []  # task key of each code
        self._codes: dict[str, int] = {}
        self._added: list[tuple[int, int, int, float]] = []
        self._added_tasks: list[tuple[int, int, int, float]] = []
        self._lock = threading.Lock()

    def _code(self, name: str) -> int:
        code = self._codes.get(name)
        if code is None:
            code = self._codes[name] = len(self._names)
            self._names.append(name)
        return code

    def _current(self) -> tuple[_Arrays, list[tuple[int, int, int, float]], _Arrays, list[tuple[int, int, int, float]]]:
        with self._lock:
            if self._arrays is None or self._tasks is None:
                src, rel, dst, weight = self._load()
                self._arrays = _Arrays(*_typed(src, rel, dst, weight))
                mids, trel, names, tweight = self._load_tasks()
                self._names, self._codes = [], {}
                codes = np.array([self._code(str(n)) for n in names.tolist()], dtype=np.int64)
                self._tasks = _Arrays(*_typed(mids, trel, codes, tweight))
                self._added, self._added_tasks = [], []
            if len(self._added) > _MERGE_AT:
                self._arrays = _merged(self._arrays, self._added)
                self._added = []
            if len(self._added_tasks) > _MERGE_AT:
                self._tasks = _merged(self._tasks, self._added_tasks)
                self._added_tasks = []
            return self._arrays, list(self._added), self._tasks, list(self._added_tasks)

    def edges(self, ids: Sequence[int], rels: Sequence[str]) -> list[tuple[int, str, int, float]]:
        """The held edges between memories of types ``rels`` with an end in ``ids``: (src, rel, dst, weight)."""
        codes = {LINK_RELS.index(r) for r in rels if r in LINK_RELS}
        if not codes or not len(ids):
            return []
        arrays, added, _, _ = self._current()
        want = np.unique(np.asarray(ids, dtype=np.int64))
        pos = arrays.touching(want)
        out = [(s, LINK_RELS[c], d, w) for s, c, d, w in zip(arrays.src[pos].tolist(), arrays.rel[pos].tolist(),
                                                           arrays.dst[pos].tolist(), arrays.weight[pos].tolist())
               if c in codes]
        wanted = set(want.tolist())
        out += [(s, LINK_RELS[c], d, w) for s, c, d, w in added if c in codes and (s in wanted or d in wanted)]
        return out

    def task_edges(self, ids: Sequence[int] = (), tasks: Sequence[str] = (), rel: str = "ABOUT"
                   ) -> list[tuple[int, str, str, float]]:
        """Held edges of type ``rel`` (ABOUT or SOLVES) leaving the memories ``ids`` or entering the task keys
        ``tasks``: (memory id, rel, task key, weight) each."""
        code = TASK_RELS.index(rel)
        _, _, arrays, added = self._current()
        pos = [arrays.outgoing(np.unique(np.asarray(ids, dtype=np.int64)))] if len(ids) else []
        known = [self._codes[t] for t in tasks if t in self._codes]
        if known:
            pos.append(arrays.incoming(np.unique(np.asarray(known, dtype=np.int64))))
        at = np.concatenate(pos) if pos else np.zeros(0, np.int64)
        rows = list(zip(arrays.src[at].tolist(), arrays.rel[at].tolist(), arrays.dst[at].tolist(),
                        arrays.weight[at].tolist())) + added
        wanted_ids, wanted_tasks = set(int(i) for i in ids), set(known)
        return [(s, rel, self._names[d], w) for s, c, d, w in dict.fromkeys(rows)
                if c == code and (s in wanted_ids or d in wanted_tasks)]

    def inserted(self, rows: Sequence[tuple[str, str, str, float]]) -> None:
        """Edges the writer just inserted (src key, rel, dst key, weight); those not held are ignored."""
        with self._lock:
            if self._arrays is None:
                return  # not loaded yet: the first load reads them from the store
            for s, r, d, w in rows:
                if not s.startswith("memory:"):
                    continue
                if r in LINK_RELS and d.startswith("memory:"):
                    self._added.append((int(s[7:]), LINK_RELS.index(r), int(d[7:]), float(w)))
                elif r in TASK_RELS:
                    self._added_tasks.append((int(s[7:]), TASK_RELS.index(r), self._code(d), float(w)))

    def drop(self) -> None:
        """Forget everything (after a delete or a clear): the next use reads the store again."""
        with self._lock:
            self._arrays = self._tasks = None
            self._added, self._added_tasks = [], []


def _typed(src: np.ndarray, rel: np.ndarray, dst: np.ndarray, weight: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return (np.asarray(src, np.int64), np.asarray(rel, np.int8), np.asarray(dst, np.int64),
            np.asarray(weight, np.float64))


def _merged(a: _Arrays, added: list[tuple[int, int, int, float]]) -> _Arrays:
    extra = np.array(added, dtype=np.float64).reshape(-1, 4)
    return _Arrays(*_typed(np.concatenate([a.src, extra[:, 0]]), np.concatenate([a.rel, extra[:, 1]]),
                           np.concatenate([a.dst, extra[:, 2]]), np.concatenate([a.weight, extra[:, 3]])))

