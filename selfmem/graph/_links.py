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

__all__ = ["MemoryLinks", "LINK_RELS"]

LINK_RELS = ("FOLLOWS", "DERIVED_FROM", "SIMILAR_TO")
"""The stored edge types between two memories that are held."""

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
        out = []
        for order, sorted_ in ((self.by_src, self.src_sorted), (self.by_dst, self.dst_sorted)):
            lo = np.searchsorted(sorted_, ids, side="left")
            hi = np.searchsorted(sorted_, ids, side="right")
            out += [order[a:b] for a, b in zip(lo.tolist(), hi.tolist()) if b > a]
        return np.concatenate(out) if out else np.zeros(0, np.int64)


class MemoryLinks:
    """The memory-to-memory edges of one store, loaded on first use.

    Parameters
    ----------
    load : callable
        Returns every held edge as arrays ``(src ids int64, rel codes int8, dst ids int64, weights)``, each
        shape (n,); the codes index :data:`LINK_RELS`.
    """

    def __init__(self, load: Callable[[], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]) -> None:
        self._load = load
        self._arrays: _Arrays | None = None
        self._added: list[tuple[int, int, int, float]] = []
        self._lock = threading.Lock()

    def _current(self) -> tuple[_Arrays, list[tuple[int, int, int, float]]]:
        with self._lock:
            if self._arrays is None or len(self._added) > _MERGE_AT:
                if self._arrays is None:
                    src, rel, dst, weight = self._load()
                    self._added = []
                else:
                    a = self._arrays
                    extra = np.array(self._added, dtype=np.float64).reshape(-1, 4)
                    src = np.concatenate([a.src, extra[:, 0].astype(np.int64)])
                    rel = np.concatenate([a.rel, extra[:, 1].astype(np.int8)])
                    dst = np.concatenate([a.dst, extra[:, 2].astype(np.int64)])
                    weight = np.concatenate([a.weight, extra[:, 3]])
                    self._added = []
                self._arrays = _Arrays(np.asarray(src, np.int64), np.asarray(rel, np.int8),
                                       np.asarray(dst, np.int64), np.asarray(weight, np.float64))
            return self._arrays, list(self._added)

    def edges(self, ids: Sequence[int], rels: Sequence[str]) -> list[tuple[int, str, int, float]]:
        """The held edges of types ``rels`` with an end in ``ids``: (src, rel, dst, weight) each."""
        codes = {LINK_RELS.index(r) for r in rels if r in LINK_RELS}
        if not codes or not len(ids):
            return []
        arrays, added = self._current()
        want = np.unique(np.asarray(ids, dtype=np.int64))
        pos = arrays.touching(want)
        out = [(s, LINK_RELS[c], d, w) for s, c, d, w in zip(arrays.src[pos].tolist(), arrays.rel[pos].tolist(),
                                                           arrays.dst[pos].tolist(), arrays.weight[pos].tolist())
               if c in codes]
        wanted = set(want.tolist())
        out += [(s, LINK_RELS[c], d, w) for s, c, d, w in added if c in codes and (s in wanted or d in wanted)]
        return out

    def inserted(self, rows: Sequence[tuple[int, str, int, float]]) -> None:
        """Edges the writer just inserted (src id, rel, dst id, weight); those of other types are ignored."""
        with self._lock:
            if self._arrays is None:
                return  # not loaded yet: the first load reads them from the store
            self._added += [(int(s), LINK_RELS.index(r), int(d), float(w)) for s, r, d, w in rows if r in LINK_RELS]

    def drop(self) -> None:
        """Forget everything (after a delete or a clear): the next use reads the store again."""
        with self._lock:
            self._arrays = None
            self._added = []
