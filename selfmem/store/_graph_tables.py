"""The knowledge graph's tables: every SQL statement the graph needs, once for DuckDB and PostgreSQL.

:class:`~selfmem.graph._embedded.EmbeddedGraph` walks and builds the graph through the
:class:`~selfmem.graph._embedded.GraphTables` protocol; :class:`SqlGraphTables` implements it on a store's
own connection (so edge writes join the records' transaction), with the engine's spelling from its
:class:`~selfmem.store._dialect.Dialect`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

import numpy as np

from ..graph._embedded import Row
from ._dialect import ArrayType, Connection, DBRow, Dialect, fetch_arrays
from ._sql import as_ints

__all__ = ["EDGE_SCHEMA", "SqlGraphTables"]

EDGE_SCHEMA = """
CREATE TABLE IF NOT EXISTS edges (
    src TEXT NOT NULL,
    rel TEXT NOT NULL,
    dst TEXT NOT NULL,
    weight DOUBLE PRECISION NOT NULL,
    created_at TIMESTAMP NOT NULL,
    props TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS edges_src ON edges (src);
CREATE INDEX IF NOT EXISTS edges_dst ON edges (dst);
CREATE INDEX IF NOT EXISTS memberships_record ON memberships (record_id);
CREATE INDEX IF NOT EXISTS memberships_topic ON memberships (topic_id);
CREATE SEQUENCE IF NOT EXISTS graph_journal_seq START 1;
CREATE TABLE IF NOT EXISTS graph_journal (
    seq BIGINT PRIMARY KEY,
    op TEXT NOT NULL,
    ids BIGINT[] NOT NULL
);
"""
"""The graph's tables (both engines read ``TEXT`` and ``DOUBLE PRECISION``; DuckDB stores them as VARCHAR, DOUBLE)."""

_EDGE_COLS = "SELECT src, rel, dst, weight, created_at, props FROM edges WHERE "
_EDGE_TYPES: tuple[ArrayType, ...] = ("text", "text", "text", "float", "time", "text")


class SqlGraphTables:
    """Edges, the mirror's journal and the node rows of one store.

    Parameters
    ----------
    con : connection
        The store's connection (DuckDB or psycopg): statements run inside the store's transaction.
    dialect : Dialect
    """

    def __init__(self, con: Connection, dialect: Dialect) -> None:
        self.con, self.dialect = con, dialect

    def _run(self, sql: str, params: Sequence[object] = ()) -> Connection:
        return self.con.execute(self.dialect.sql(sql), list(params))

    def _rows(self, sql: str, params: Sequence[object] = ()) -> list[DBRow]:
        rows: list[DBRow] = self._run(sql, params).fetchall()
        return rows

    def _count(self, sql: str) -> int:
        return int(self._run(sql).fetchone()[0])

    # -- edges ---------------------------------------------------------------------
    def insert_edges(self, src: Sequence[str], rel: Sequence[str], dst: Sequence[str], weight: Sequence[float],
                     props: Sequence[str], now: datetime) -> None:
        cols = self.dialect.unnest(("text", "text", "text", "float", None, "text"))
        self._run(f"INSERT INTO edges SELECT {cols}",
                  [list(src), list(rel), list(dst), [float(w) for w in weight], now, list(props)])

    def memory_links(self, rels: Sequence[str], to_tasks: bool = False
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every stored edge of types ``rels`` leaving a memory: (src ids, rel codes (index in ``rels``), dst,
        weights), shape (n,) each, read in one query (columnar where the engine fetches so). The destination
        is a memory id, or with ``to_tasks`` the task key (str)."""
        codes = " ".join(f"WHEN '{r}' THEN {i}" for i, r in enumerate(rels))
        where, params = self.dialect.in_list("rel", list(rels), "text")
        dst = "dst" if to_tasks else "CAST(substr(dst, 8) AS BIGINT)"
        cond = "" if to_tasks else " AND dst LIKE 'memory:%'"
        cur = self._run(f"SELECT CAST(substr(src, 8) AS BIGINT), CASE rel {codes} END, {dst}, weight FROM edges "
                        f"WHERE {where} AND src LIKE 'memory:%'{cond}", params)
        cols = fetch_arrays(cur)
        return (np.asarray(cols[0], np.int64), np.asarray(cols[1], np.int8),
                np.asarray(cols[2], object if to_tasks else np.int64), np.asarray(cols[3], np.float64))

    def follows_touching(self, keys: Sequence[str]) -> list[tuple[str, str, datetime | None]]:
        """FOLLOWS edges (src, dst, created_at) with an end in ``keys``."""
        src, p1 = self.dialect.in_list("src", keys, "text")
        dst, p2 = self.dialect.in_list("dst", keys, "text")
        return self._rows(f"SELECT src, dst, created_at FROM edges WHERE rel = 'FOLLOWS' AND ({src} OR {dst})",
                          p1 + p2)

    def delete_edges_of(self, keys: Sequence[str]) -> None:
        src, p1 = self.dialect.in_list("src", keys, "text")
        dst, p2 = self.dialect.in_list("dst", keys, "text")
        self._run(f"DELETE FROM edges WHERE {src} OR {dst}", p1 + p2)

    def clear_edges(self) -> None:
        self._run("DELETE FROM edges")

    def edges_page(self, offset: int, limit: int) -> list[Row]:
        """Every stored edge, page by page in a fixed order."""
        return [Row._make(r) for r in self._rows(_EDGE_COLS + "TRUE ORDER BY src, rel, dst, created_at LIMIT ? "
                                                 "OFFSET ?", [int(limit), int(offset)])]

    def put_edges(self, rows: Sequence[Row]) -> None:
        """Insert edges as :meth:`edges_page` returns them (their own times kept)."""
        if rows:
            self._run(f"INSERT INTO edges SELECT {self.dialect.unnest(_EDGE_TYPES)}", [list(c) for c in zip(*rows)])

    def stored_edges(self, keys: Sequence[str], out: bool, into: bool) -> list[Row]:
        """Stored edges leaving (``out``) and/or entering (``into``) ``keys``."""
        # one indexed lookup per direction (an OR of the two would scan the table)
        parts, params = [], []
        for column, wanted in (("src", out), ("dst", into)):
            if wanted and keys:
                where, values = self.dialect.in_list(column, keys, "text")
                parts.append(_EDGE_COLS + where)
                params += values
        return [Row._make(r) for r in self._rows(" UNION ALL ".join(parts), params)] if parts else []

    def last_in_sessions(self, sessions: Sequence[str], before: int) -> dict[str, int]:
        """The latest record id below ``before`` of each session."""
        if not sessions:
            return {}
        where, params = self.dialect.in_list("session", sessions, "text")
        rows = self._rows(f"SELECT session, max(id) FROM records WHERE id < ? AND {where} GROUP BY 1",
                          [int(before), *params])
        return {s: int(i) for s, i in rows}

    # -- derived edges (from records, memberships, topics) -------------------------------
    def memory_topic_session(self, ids: Sequence[int]) -> list[tuple[int, str | None, datetime, int | None, float | None]]:
        """(id, session, created_at, top topic or None, its probability) of each memory in ``ids``."""
        where, params = self.dialect.in_list("r.id", as_ints(ids))
        return self._rows("SELECT r.id, r.session, r.created_at, m.topic_id, m.prob FROM records r LEFT JOIN "
                          f"memberships m ON m.record_id = r.id AND m.rank = 0 WHERE {where}", params)

    def topic_member_rows(self, topic_ids: Sequence[int]) -> list[tuple[int, int, float]]:
        """(record, topic, probability) of every memory whose top topic is in ``topic_ids``."""
        where, params = self.dialect.in_list("topic_id", as_ints(topic_ids))
        return self._rows(f"SELECT record_id, topic_id, prob FROM memberships WHERE rank = 0 AND {where}", params)

    def session_member_rows(self, sessions: Sequence[str]) -> list[tuple[int, str, datetime]]:
        """(record, session, created_at) of every memory in ``sessions``."""
        where, params = self.dialect.in_list("session", sessions, "text")
        return self._rows(f"SELECT id, session, created_at FROM records WHERE {where}", params)

    def subtopic_rows(self, children: Sequence[int], parents: Sequence[int]) -> list[tuple[int, int]]:
        """(topic, parent) pairs whose topic is in ``children`` or whose parent is in ``parents``."""
        child, p1 = self.dialect.in_list("id", as_ints(children))
        parent, p2 = self.dialect.in_list("parent", as_ints(parents))
        return self._rows(f"SELECT id, parent FROM topics WHERE parent IS NOT NULL AND ({child} OR {parent})", p1 + p2)

    def topic_parent_pairs(self) -> list[tuple[int, int]]:
        return self._rows("SELECT id, parent FROM topics WHERE parent IS NOT NULL")

    def iter_in_topic(self, batch: int) -> Iterator[list[Row]]:
        """Every IN_TOPIC edge, ``batch`` rows at a time."""
        with self.con.cursor() as cur:
            cur.execute("SELECT 'memory:' || record_id, 'IN_TOPIC', 'topic:' || topic_id, prob, NULL, '{}' "
                        "FROM memberships WHERE rank = 0 ORDER BY record_id")
            while chunk := cur.fetchmany(batch):
                yield [Row._make(r) for r in chunk]

    # -- nodes ----------------------------------------------------------------------
    def memory_nodes(self, ids: Sequence[int]) -> list[tuple[int, str, str, str | None]]:
        """(id, kind, first 200 characters, session) of the memories that exist among ``ids``."""
        where, params = self.dialect.in_list("id", as_ints(ids))
        return self._rows(f"SELECT id, kind, left(text, 200), session FROM records WHERE {where}", params)

    def memory_rows(self, ids: Sequence[int]) -> list[tuple[int, str, str, str | None, datetime, float, str]]:
        """(id, kind, text, session, created_at, importance, metadata JSON) of ``ids``, by id."""
        where, params = self.dialect.in_list("id", as_ints(ids))
        return self._rows("SELECT id, kind, text, session, created_at, importance, metadata FROM records "
                          f"WHERE {where} ORDER BY id", params)

    def topic_nodes(self, ids: Sequence[int] | None) -> list[tuple[int, str, int, str, bool]]:
        """(id, label, level, keywords JSON, provisional) of the topics among ``ids`` (all when None), by id."""
        sql = "SELECT id, label, level, keywords, provisional FROM topics"
        if ids is None:
            return self._rows(sql + " ORDER BY id")
        where, params = self.dialect.in_list("id", as_ints(ids))
        return self._rows(f"{sql} WHERE {where} ORDER BY id", params)

    def session_names(self, names: Sequence[str]) -> list[str]:
        where, params = self.dialect.in_list("name", names, "text")
        return [r[0] for r in self._rows(f"SELECT name FROM sessions WHERE {where}", params)]

    def task_keys(self, keys: Sequence[str]) -> list[str]:
        """The task (or entity) keys among ``keys`` that an edge ends at."""
        # only ABOUT and SOLVES end at a task, MENTIONS at an entity; a filter on rel here would stop DuckDB
        # using the dst index
        where, params = self.dialect.in_list("dst", keys, "text")
        return [r[0] for r in self._rows(f"SELECT DISTINCT dst FROM edges WHERE {where}", params)]

    def mentions_of(self, record_keys: Sequence[str]) -> list[tuple[str, str]]:
        """(memory key, entity key) of the MENTIONS edges leaving ``record_keys``."""
        if not record_keys:
            return []
        where, params = self.dialect.in_list("src", record_keys, "text")
        return [(a, b) for a, b in self._rows(f"SELECT src, dst FROM edges WHERE {where} AND rel = 'MENTIONS'",
                                              params)]

    def all_mentions(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Every MENTIONS edge: (memory ids (n,), entity codes (n,), the entity keys the codes index, sorted)."""
        names = [r[0] for r in self._rows("SELECT DISTINCT dst FROM edges WHERE rel = 'MENTIONS' ORDER BY dst")]
        cols = fetch_arrays(self._run(
            "SELECT CAST(substr(src, 8) AS BIGINT), dense_rank() OVER (ORDER BY dst) - 1 FROM edges "
            "WHERE rel = 'MENTIONS'"))
        return np.asarray(cols[0], np.int64), np.asarray(cols[1], np.int64), names

    def mentioned_by(self, entity_keys: Sequence[str], max_df: int) -> list[tuple[str, str]]:
        """(memory key, entity key) of the MENTIONS edges entering those of ``entity_keys`` that at most
        ``max_df`` memories mention."""
        if not entity_keys:
            return []
        where, params = self.dialect.in_list("dst", entity_keys, "text")
        kept = [e for e, n in self._rows(f"SELECT dst, count(*) FROM edges WHERE {where} GROUP BY dst", params)
                if int(n) <= max_df]
        if not kept:
            return []
        where, params = self.dialect.in_list("dst", kept, "text")
        return [(a, b) for a, b in self._rows(f"SELECT src, dst FROM edges WHERE {where}", params)]

    def record_ids_after(self, last: int, limit: int) -> list[int]:
        return [int(r[0]) for r in self._rows("SELECT id FROM records WHERE id > ? ORDER BY id LIMIT ?",
                                              [int(last), int(limit)])]

    # -- counts and checks ------------------------------------------------------------
    def edge_counts(self) -> dict[str, int]:
        """Stored edges per type, plus the derived IN_TOPIC, SUBTOPIC_OF and IN_SESSION."""
        out = {r: int(n) for r, n in self._rows("SELECT rel, count(*) FROM edges GROUP BY 1")}
        out["IN_TOPIC"] = self._count("SELECT count(*) FROM memberships WHERE rank = 0")
        out["SUBTOPIC_OF"] = self._count("SELECT count(*) FROM topics WHERE parent IS NOT NULL")
        out["IN_SESSION"] = self._count("SELECT count(*) FROM records WHERE session IS NOT NULL")
        return out

    def dangling(self) -> int:
        """Stored edges whose memory end is not a stored record (0 in a consistent store)."""
        missing = self.dialect.memory_missing
        return self._count(f"SELECT count(*) FROM edges e WHERE ({missing.format(end='e.src')}) OR "
                           f"({missing.format(end='e.dst')})")

    def missing_follows(self) -> int:
        """Memories after the first of their session without a FOLLOWS edge to the one before."""
        return self._count(
            "SELECT count(*) FROM records r WHERE r.session IS NOT NULL AND r.id <> (SELECT min(id) FROM records q "
            "WHERE q.session = r.session) AND NOT EXISTS (SELECT 1 FROM edges e WHERE e.src = 'memory:' || r.id "
            "AND e.rel = 'FOLLOWS')")

    # -- journal (for a mirror) -----------------------------------------------------------
    def journal_add(self, op: str, ids: Sequence[int]) -> None:
        self._run("INSERT INTO graph_journal VALUES (nextval('graph_journal_seq'), ?, ?)", [op, as_ints(ids)])

    def journal_pending(self, limit: int) -> list[tuple[int, str, list[int]]]:
        rows = self._rows("SELECT seq, op, ids FROM graph_journal ORDER BY seq LIMIT ?", [int(limit)])
        return [(int(s), op, [int(i) for i in ids]) for s, op, ids in rows]

    def journal_done(self, upto: int) -> None:
        self._run("DELETE FROM graph_journal WHERE seq <= ?", [int(upto)])
