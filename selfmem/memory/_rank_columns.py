"""The columns ranking reads, held in memory: a search reads records only for the hits it returns.

A record's importance, creation time and text never change after it is added, so a handle can keep them for
every id once read: the first search reads them for all records in one columnar query (17 ms at 300k on
DuckDB), later ones read only ids they have not seen (records other processes or this one added since).
Ranking then needs the store only for the texts of the hits it keeps (de-duplication by text) and
returns; reading every candidate's record (about 100 ids) cost a search 2.7 ms of DuckDB at 300k.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..store import Store

__all__ = ["RankColumns", "Columns"]


class Columns(NamedTuple):
    """Ranking columns of some ids, shape (n,) each."""

    present: np.ndarray
    """bool: the store holds the record (False: deleted, or never committed)."""
    importance: np.ndarray
    """float64."""
    created: np.ndarray
    """float64: seconds since 1970, UTC."""
    asks: np.ndarray
    """bool: the text holds a question mark."""
    chars: np.ndarray
    """int64: the text's length in characters."""


class RankColumns:
    """Importance, creation time, whether the text asks a question and its length, per record id (dense
    arrays, grown as ids grow), read from one store.

    The cache belongs to one store object: handed another (a reopened or migrated store) it starts over.
    """

    def __init__(self) -> None:
        self._store: Store | None = None
        self._known = np.zeros(0, bool)
        self._present = np.zeros(0, bool)
        self._importance = np.zeros(0)
        self._created = np.zeros(0)
        self._asks = np.zeros(0, bool)
        self._chars = np.zeros(0, np.int64)

    def get(self, store: Store, ids: np.ndarray) -> Columns:
        """The columns of ``ids`` (int64, shape (n,)), reading from ``store`` only those not seen before."""
        ids = np.asarray(ids, dtype=np.int64)
        if store is not self._store:
            self._store = store
            self._known = np.zeros(0, bool)
            self._put(ids, store.rank_rows())  # everything, once: the common case of a search
        seen = np.zeros(len(ids), bool)
        inside = ids < len(self._known)
        seen[inside] = self._known[ids[inside]]
        unseen = ids[~seen]
        if len(unseen):
            self._put(unseen, store.rank_rows(unseen))
        return Columns(self._present[ids], self._importance[ids], self._created[ids], self._asks[ids],
                       self._chars[ids])

    def _put(self, asked: np.ndarray, rows: tuple[np.ndarray, ...]) -> None:
        got, importance, created, asks, chars = rows
        top = int(max(asked.max(initial=-1), got.max(initial=-1))) + 1
        if top > len(self._known):
            size = max(top, 2 * len(self._known))
            for name in ("_known", "_present", "_importance", "_created", "_asks", "_chars"):
                old = getattr(self, name)
                new = np.zeros(size, old.dtype)
                new[:len(old)] = old
                setattr(self, name, new)
        self._known[asked] = True  # asked for: present if the store answered, else absent
        self._present[asked] = False
        self._known[got] = self._present[got] = True
        self._importance[got] = importance
        self._created[got] = created
        self._asks[got] = asks
        self._chars[got] = chars
