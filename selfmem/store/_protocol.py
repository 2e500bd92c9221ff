"""The store protocol: what ``Memory`` and the derived parts need from durable storage.

Every SQL statement of selfmem lives in the modules of ``selfmem.store``; the rest of the package
talks to a :class:`Store`. DuckDB (:class:`~selfmem.store._duckdb.DuckDBStore`) is the embedded
default; another database is one more module implementing this protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import NamedTuple, Protocol, TypeAlias

import numpy as np

from .._types import JSON, NewRecord, Record, TopicRow
from ..graph._embedded import GraphTables

__all__ = ["Store", "Ids", "PageRow", "RankRows", "SessionSummary"]

Ids: TypeAlias = "Sequence[int] | np.ndarray"


class PageRow(NamedTuple):
    """One stored record as :meth:`Store.page` reads it (what export and migrate copy)."""

    id: int
    text: str
    kind: str
    metadata: str
    """The metadata as stored: JSON text."""
    session: str | None
    created_at: datetime
    """UTC, without a zone (as stored)."""
    importance: float
    parents: list[int] | None
    key: str | None


class RankRows(NamedTuple):
    """The columns of records that ranking reads and that never change after an add, shape (n,) each."""

    ids: np.ndarray
    """int64, ascending."""
    importance: np.ndarray
    """float64."""
    created: np.ndarray
    """float64: seconds since 1970, UTC."""
    asks: np.ndarray
    """bool: the text holds a question mark (``SearchConfig.replies`` lifts the answers of such hits)."""
    chars: np.ndarray
    """int64: the text's length in characters (``SearchConfig.length_weight``)."""


class SessionSummary(NamedTuple):
    """One session as :meth:`Store.session_summary` reads it (``""``: records outside a session)."""

    session: str
    records: int
    first: datetime
    last: datetime
    kinds: list[str]
"""Record ids: a sequence of ints or an int64 array of shape (n,)."""


class Store(Protocol):
    """Durable storage of one memory: records, raw vectors, sessions, topics, graph tables and meta.

    Writes that must commit together go through :meth:`insert`, :meth:`delete` (each taking the
    derived parts' ``writes``) or :meth:`transaction`; a refused write raises StorageError and leaves
    nothing behind.
    """

    path: Path
    topics_generation: int
    """Counts topic trees swapped in through this handle (parts that derive from topics watch it)."""
    view_manifest: dict[str, JSON] | None
    """The read view's manifest when this store is a published view (see ``_readview``), else None."""

    @property
    def graph(self) -> GraphTables:
        """The knowledge graph's tables, on this store's connection (writes join its transactions)."""

    shared: bool
    """True where other processes may write the same memory (then :meth:`changes_since` tells what they did)."""

    @property
    def store_id(self) -> str: ...

    def changes_since(self, seq: int) -> tuple[int, list[int], list[int]]: ...

    def last_change(self) -> int: ...

    # -- connections and transactions --
    def reader(self) -> Store: ...

    def read_transaction(self) -> AbstractContextManager[Store]: ...

    def transaction(self, what: str) -> AbstractContextManager[None]: ...

    def close(self) -> None: ...

    def has_table(self, name: str) -> bool: ...

    # -- durability upkeep (a no-op where the database does it itself) --
    def set_checkpoint_threshold(self, nbytes: int) -> None: ...

    def wal_bytes(self) -> int: ...

    def checkpoint(self, tries: int = 100) -> bool: ...

    # -- meta --
    def get_meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str) -> None: ...

    def meta_items(self, prefix: str) -> dict[str, str]: ...

    # -- writes --
    def allocate_ids(self, n: int) -> list[int]: ...

    def reserve_ids(self, upto: int) -> None: ...

    def insert(self, records: Sequence[NewRecord], vectors: Mapping[str, np.ndarray], ids: Ids | None = None,
               writes: Sequence[Callable[[Store], None]] = ()) -> list[int]: ...

    def delete(self, ids: Ids, writes: Sequence[Callable[[Store], None]] = ()) -> None: ...

    def replace_vectors(self, role: str, ids: Ids, arr: np.ndarray) -> None: ...

    def mark_used(self, ids: Ids) -> None: ...

    def set_usage(self, ids: Ids, counts: Sequence[int], last_used: Sequence[datetime | None]) -> None: ...

    # -- reads --
    def count(self) -> int: ...

    def ids(self) -> np.ndarray: ...

    def ids_of_keys(self, keys: Sequence[str]) -> dict[str, int]: ...

    def existing(self, ids: Iterable[int] | np.ndarray) -> set[int]: ...

    def get(self, ids: Ids) -> dict[int, Record]: ...

    def rank_rows(self, ids: Ids | None = None) -> RankRows: ...

    def vectors(self, role: str, ids: Ids | None = None) -> tuple[np.ndarray, np.ndarray]: ...

    def texts(self) -> tuple[np.ndarray, list[str]]: ...

    def filter_ids(self, kinds: Sequence[str] | None = None, sessions: Sequence[str] | None = None,
                   where: Mapping[str, object] | None = None, since: datetime | None = None,
                   until: datetime | None = None) -> np.ndarray: ...

    def group_counts(self, column: str) -> dict[str, int]: ...

    def page(self, after: int, limit: int) -> list[PageRow]: ...

    # -- topics --
    def add_memberships(self, ids: Ids, tids: Ids, probs: Sequence[float] | np.ndarray,
                        rank: int = 0) -> None: ...

    def add_topics(self, rows: Sequence[TopicRow]) -> None: ...

    def replace_topics(self, topics: Sequence[TopicRow], ids: np.ndarray, tids: np.ndarray,
                       probs: np.ndarray) -> None: ...

    def topics(self) -> list[TopicRow]: ...

    def topic_sizes(self) -> dict[int, int]: ...

    def top_topics(self, ids: Ids) -> dict[int, int]: ...

    def top_topic_table(self) -> tuple[np.ndarray, np.ndarray]: ...

    def topic_members(self, topic_ids: Ids) -> np.ndarray: ...

    # -- summaries --
    def session_summary(self) -> list[SessionSummary]: ...

    def topic_levels(self) -> tuple[dict[int, int], int]: ...

    def id_range(self) -> tuple[int, int]: ...

    def count_between(self, lo: int, hi: int | None = None) -> int: ...

    def topic_tree(self) -> tuple[dict[int, int | None], dict[int, str], dict[int, int]]: ...

    def scan(self) -> dict[str, int]: ...

    def membership_problems(self) -> tuple[int, int, int]: ...
