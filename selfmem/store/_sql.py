"""The statements the DuckDB and PostgreSQL stores share, written once: :class:`SqlStore`.

A store is this class plus its connection handling and the few statements where an engine does better
its own way (bulk inserts, vector reads, DuckDB's numpy fetches and block scan, PostgreSQL's locks).
Statements are written with ``?`` placeholders; the store's :class:`~selfmem.store._dialect.Dialect`
turns them into the engine's and spells the list parameters.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import SupportsInt

import numpy as np

from .._errors import InvalidInputError
from .._types import Record, TopicRow
from ._dialect import Connection, DBRow, Dialect, fetch_arrays
from ._protocol import Ids, PageRow, RankRows, SessionSummary

__all__ = ["SqlStore", "PAGE_COLUMNS", "RECORD_COLUMNS", "record_of", "as_ints"]

PAGE_COLUMNS = PageRow._fields
"""The records columns :meth:`SqlStore.page` reads, in :class:`PageRow` order."""


RECORD_COLUMNS = "id, kind, text, metadata, session, created_at, importance, use_count, last_used_at, parents"
"""The columns :func:`record_of` reads, in order."""


def as_ints(ids: Iterable[SupportsInt]) -> list[int]:
    """Ids as Python ints (a numpy array's int64 is not every driver's parameter type)."""
    return [int(i) for i in ids]


def _utc(ts: datetime | None) -> datetime | None:
    return None if ts is None else ts.replace(tzinfo=timezone.utc)


def record_of(row: DBRow) -> Record:
    """A :class:`Record` from a row of :data:`RECORD_COLUMNS` (times are stored naive, in UTC)."""
    return Record(id=int(row[0]), kind=row[1], text=row[2], metadata=json.loads(row[3]), session=row[4],
                  created_at=_utc(row[5]), importance=float(row[6]), use_count=int(row[7]),
                  last_used_at=_utc(row[8]), parents=tuple(int(p) for p in (row[9] or ())))


class SqlStore:
    """Meta, record and topic reads of a store, in the SQL both engines run (``_con``: the store's connection)."""

    dialect: Dialect
    _con: Connection

    def has_table(self, name: str) -> bool:  # each engine asks its own catalog
        raise NotImplementedError

    def _run(self, sql: str, params: Sequence[object] = ()) -> Connection:
        return self._con.execute(self.dialect.sql(sql), list(params))

    def _all(self, sql: str, params: Sequence[object] = ()) -> list[DBRow]:
        rows: list[DBRow] = self._run(sql, params).fetchall()
        return rows

    def _int(self, sql: str, params: Sequence[object] = ()) -> int:
        return int(self._run(sql, params).fetchone()[0])

    # -- meta ----------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self._run("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._run("INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", [key, value])

    def meta_items(self, prefix: str) -> dict[str, str]:
        rows = self._all("SELECT key, value FROM meta WHERE starts_with(key, ?)", [prefix])
        return {k[len(prefix):]: v for k, v in rows}

    # -- records ---------------------------------------------------------------------
    def count(self) -> int:
        return self._int("SELECT count(*) FROM records")

    def texts(self) -> tuple[np.ndarray, list[str]]:
        """All ids (ascending, (n,) int64) and their texts."""
        rows = self._all("SELECT id, text FROM records ORDER BY id")
        return np.array([r[0] for r in rows], dtype=np.int64), [r[1] for r in rows]

    def ids_of_keys(self, keys: Sequence[str]) -> dict[str, int]:
        """The ids of records added with these idempotency keys (absent keys are left out)."""
        if not keys:
            return {}
        where, params = self.dialect.in_list("key", keys, "text")
        return {k: int(i) for k, i in self._all(f"SELECT key, id FROM records WHERE {where}", params)}

    def existing(self, ids: Iterable[int] | np.ndarray) -> set[int]:
        where, params = self.dialect.in_list("id", as_ints(ids))
        return {int(r[0]) for r in self._all(f"SELECT id FROM records WHERE {where}", params)}

    def get(self, ids: Ids) -> dict[int, Record]:
        """Records by id (missing ids are absent from the result)."""
        if not len(ids):
            return {}
        where, params = self.dialect.in_list("id", as_ints(ids))
        return {int(r[0]): record_of(r) for r in self._all(f"SELECT {RECORD_COLUMNS} FROM records WHERE {where}",
                                                           params)}

    def rank_rows(self, ids: Ids | None = None) -> RankRows:
        """Importance, creation time, whether the text asks a question (holds a ``?``) and its length of the
        records ``ids`` (None: all), ascending by id; missing ids are absent."""
        where, params = ("", []) if ids is None else self.dialect.in_list("id", as_ints(ids))
        if ids is not None and not params:
            return RankRows(np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros(0, bool), np.zeros(0, np.int64))
        epoch = self.dialect.epoch.format(col="created_at")
        # chr(63) is "?": a literal one would read as a placeholder
        got, imp, created, asks, chars = self._arrays(
            f"SELECT id, importance, {epoch}, position(chr(63) IN text) > 0, length(text) "
            f"FROM records{' WHERE ' + where if where else ''} ORDER BY id", params)
        return RankRows(got.astype(np.int64), imp.astype(np.float64), created.astype(np.float64), asks.astype(bool),
                        chars.astype(np.int64))

    def _arrays(self, sql: str, params: Sequence[object] = ()) -> list[np.ndarray]:
        """The columns of a query's rows as arrays (:func:`~selfmem.store._dialect.fetch_arrays`)."""
        return fetch_arrays(self._run(sql, params))

    def mark_used(self, ids: Ids) -> None:
        """Increment ``use_count`` and set ``last_used_at`` of the given records."""
        if len(ids):
            where, params = self.dialect.in_list("id", as_ints(ids))
            self._run(f"UPDATE records SET use_count = use_count + 1, last_used_at = ? WHERE {where}",
                      [datetime.now(timezone.utc).replace(tzinfo=None), *params])

    def set_usage(self, ids: Ids, counts: Sequence[int], last_used: Sequence[datetime | None]) -> None:
        """Set ``use_count`` and ``last_used_at`` of records (a migration copies them)."""
        if len(ids):
            self._run(f"UPDATE records SET use_count = u.c, last_used_at = u.t FROM (SELECT "
                      f"{self.dialect.unnest(('int', 'int', 'time'))}) AS u(id, c, t) WHERE records.id = u.id",
                      [as_ints(ids), [int(c) for c in counts], [None if t is None else t.astimezone(timezone.utc).replace(
                          tzinfo=None) for t in last_used]])

    def group_counts(self, column: str) -> dict[str, int]:
        if column not in ("kind", "session"):
            raise InvalidInputError(f"cannot group by {column!r}")
        rows = self._all(f"SELECT coalesce({column}, ''), count(*) FROM records GROUP BY 1 ORDER BY 1")
        return {r[0]: int(r[1]) for r in rows}

    def page(self, after: int, limit: int) -> list[PageRow]:
        """Up to ``limit`` records with ``id > after``, by id."""
        rows = self._all(f"SELECT {', '.join(PAGE_COLUMNS)} FROM records WHERE id > ? ORDER BY id LIMIT ?",
                         [int(after), int(limit)])
        return [PageRow._make(r) for r in rows]

    def id_range(self) -> tuple[int, int]:
        """The highest record id (0 when empty) and the number of records."""
        hi, n = self._run("SELECT coalesce(max(id), 0), count(*) FROM records").fetchone()
        return int(hi), int(n)

    def count_between(self, lo: int, hi: int | None = None) -> int:
        """Records with ``lo < id <= hi`` (no upper bound when ``hi`` is None)."""
        if hi is None:
            return self._int("SELECT count(*) FROM records WHERE id > ?", [int(lo)])
        return self._int("SELECT count(*) FROM records WHERE id > ? AND id <= ?", [int(lo), int(hi)])

    def session_summary(self) -> list[SessionSummary]:
        """Per session (``''`` for records outside one): records, first and last time (UTC), kinds."""
        rows = self._all("SELECT coalesce(session, ''), count(*), min(created_at), max(created_at), "
                         "array_agg(DISTINCT kind ORDER BY kind) FROM records GROUP BY 1")
        return [SessionSummary(r[0], int(r[1]), r[2].replace(tzinfo=timezone.utc), r[3].replace(tzinfo=timezone.utc),
                               list(r[4])) for r in rows]

    # -- topics ----------------------------------------------------------------------
    def topics(self) -> list[TopicRow]:
        rows = self._all("SELECT id, parent, level, size, centroid, label, keywords, provisional FROM topics "
                         "ORDER BY level, id")
        return [TopicRow(int(r[0]), None if r[1] is None else int(r[1]), int(r[2]), int(r[3]),
                         np.frombuffer(bytes(r[4]), dtype=np.float32).copy(), r[5], tuple(json.loads(r[6])),
                         bool(r[7])) for r in rows]

    def topic_sizes(self) -> dict[int, int]:
        """Live member counts of leaf topics (top memberships)."""
        return {int(a): int(b) for a, b in self._all("SELECT topic_id, count(*) FROM memberships WHERE rank = 0 "
                                                     "GROUP BY 1")}

    def top_topics(self, ids: Ids) -> dict[int, int]:
        """Each record's most probable topic."""
        if not len(ids):
            return {}
        where, params = self.dialect.in_list("record_id", as_ints(ids))
        rows = self._all(f"SELECT record_id, topic_id FROM memberships WHERE rank = 0 AND {where}", params)
        return {int(a): int(b) for a, b in rows}

    def topic_levels(self) -> tuple[dict[int, int], int]:
        """Topics per level and the number of provisional leaf topics."""
        if not self.has_table("topics"):
            return {}, 0
        rows = self._all("SELECT level, count(*), count(*) FILTER (WHERE provisional AND level = 0) FROM topics "
                         "GROUP BY level ORDER BY level")
        return {int(r[0]): int(r[1]) for r in rows}, sum(int(r[2]) for r in rows)

    def topic_tree(self) -> tuple[dict[int, int | None], dict[int, str], dict[int, int]]:
        """Each topic's parent and label, and each record's most probable topic."""
        if not self.has_table("topics"):
            return {}, {}, {}
        rows = self._all("SELECT id, parent, label FROM topics")
        parents = {int(r[0]): None if r[1] is None else int(r[1]) for r in rows}
        labels = {int(r[0]): r[2] for r in rows}
        member = {int(a): int(b) for a, b in self._all("SELECT record_id, topic_id FROM memberships WHERE rank = 0")}
        return parents, labels, member

    def membership_problems(self) -> tuple[int, int, int]:
        """Leaf topics, records without a topic, and memberships naming a missing record or topic."""
        if not (self.has_table("memberships") and self.has_table("topics")):
            return 0, 0, 0
        leaves = self._int("SELECT count(*) FROM topics WHERE level = 0")
        unassigned, orphan = self._run(
            "SELECT (SELECT count(*) FROM records r WHERE NOT EXISTS "
            "  (SELECT 1 FROM memberships m WHERE m.record_id = r.id AND m.rank = 0)), "
            "(SELECT count(*) FROM memberships m WHERE NOT EXISTS (SELECT 1 FROM records r WHERE r.id = m.record_id) "
            "  OR NOT EXISTS (SELECT 1 FROM topics t WHERE t.id = m.topic_id))").fetchone()
        return leaves, int(unassigned), int(orphan)
