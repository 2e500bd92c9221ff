"""The embedded graph backend: nodes and edges in the memory's own DuckDB file.

Memory, Topic and Session nodes are the ``records``, ``topics`` and ``sessions`` rows; Task nodes are
the tasks that ABOUT/SOLVES edges name, Entity nodes the phrases MENTIONS edges name. SIMILAR_TO, FOLLOWS,
ABOUT, SOLVES, DERIVED_FROM and MENTIONS edges are
rows of the ``edges`` table, written in the records' own transaction; IN_TOPIC (a record's most
probable topic), SUBTOPIC_OF and IN_SESSION are read off the memberships, topics and records tables,
so they always agree with them; RELATED_TO comes from topic centroids (held by the caller).

Walks are breadth-first with one query per level over the whole frontier.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import NamedTuple, Protocol

import numpy as np

from .._errors import RecordNotFoundError
from .._types import Edge, Node, Subgraph
from ._build import LABELS, STORED_RELS, EdgeRow, key
from ._entities import MentionIndex
from ._links import LINK_RELS, TASK_RELS, MemoryLinks

__all__ = ["EmbeddedGraph", "GraphTables", "Row"]

class Row(NamedTuple):
    """An edge as stored or walked (derived edges have no time)."""

    src: str
    rel: str
    dst: str
    weight: float
    created_at: datetime | None
    props: str
    """The edge's properties as JSON text."""


def _split(keys: Iterable[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {k: [] for k in LABELS}
    for k in keys:
        kind, _, value = k.partition(":")
        out[kind].append(value)
    return out


def _utc(ts: datetime | None) -> datetime | None:
    return None if ts is None else ts.replace(tzinfo=timezone.utc)


def to_edge(row: Row) -> Edge:
    props = json.loads(row.props) if row.props not in ("{}", "") else {}
    return Edge(row.src, row.rel, row.dst, float(row.weight), _utc(row.created_at), props)


class GraphTables(Protocol):
    """What the graph reads and writes in a store (every query lives in the store's module)."""

    def insert_edges(self, src: Sequence[str], rel: Sequence[str], dst: Sequence[str], weight: Sequence[float],
                     props: Sequence[str], now: datetime) -> None: ...

    def follows_touching(self, keys: Sequence[str]) -> list[tuple[str, str, datetime | None]]: ...

    def memory_links(self, rels: Sequence[str], to_tasks: bool = False
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]: ...

    def delete_edges_of(self, keys: Sequence[str]) -> None: ...

    def clear_edges(self) -> None: ...

    def edges_page(self, offset: int, limit: int) -> list[Row]: ...

    def put_edges(self, rows: Sequence[Row]) -> None: ...

    def stored_edges(self, keys: Sequence[str], out: bool, into: bool) -> list[Row]: ...

    def last_in_sessions(self, sessions: Sequence[str], before: int) -> dict[str, int]: ...

    def memory_topic_session(self, ids: Sequence[int]) -> list[tuple[int, str | None, datetime, int | None, float | None]]: ...

    def topic_member_rows(self, topic_ids: Sequence[int]) -> list[tuple[int, int, float]]: ...

    def session_member_rows(self, sessions: Sequence[str]) -> list[tuple[int, str, datetime]]: ...

    def subtopic_rows(self, children: Sequence[int], parents: Sequence[int]) -> list[tuple[int, int]]: ...

    def topic_parent_pairs(self) -> list[tuple[int, int]]: ...

    def iter_in_topic(self, batch: int) -> Iterator[list[Row]]: ...

    def memory_nodes(self, ids: Sequence[int]) -> list[tuple[int, str, str, str | None]]: ...

    def memory_rows(self, ids: Sequence[int]) -> list[tuple[int, str, str, str | None, datetime, float, str]]: ...

    def topic_nodes(self, ids: Sequence[int] | None) -> list[tuple[int, str, int, str, bool]]: ...

    def session_names(self, names: Sequence[str]) -> list[str]: ...

    def task_keys(self, keys: Sequence[str]) -> list[str]: ...

    def mentions_of(self, record_keys: Sequence[str]) -> list[tuple[str, str]]: ...

    def mentioned_by(self, entity_keys: Sequence[str], max_df: int) -> list[tuple[str, str]]: ...

    def all_mentions(self) -> tuple[np.ndarray, np.ndarray, list[str]]: ...

    def record_ids_after(self, last: int, limit: int) -> list[int]: ...

    def edge_counts(self) -> dict[str, int]: ...

    def dangling(self) -> int: ...

    def missing_follows(self) -> int: ...

    def journal_add(self, op: str, ids: Sequence[int]) -> None: ...

    def journal_pending(self, limit: int) -> list[tuple[int, str, list[int]]]: ...

    def journal_done(self, upto: int) -> None: ...


class EmbeddedGraph:
    """Reads and writes of the graph stored in one DuckDB database.

    Parameters
    ----------
    tables : GraphTables
        The store's graph tables (writes join the store's open transaction).
    related : sequence of EdgeRow
        The RELATED_TO edges of the current topic tree.
    cache_links : bool
        Hold the edges between memories in memory (:class:`~selfmem.graph._links.MemoryLinks`) for
        :meth:`links`: only for the store's one writer (another process's edges would not be seen).
    """

    def __init__(self, tables: GraphTables, related: Sequence[EdgeRow] = (), cache_links: bool = False) -> None:
        self.tables = tables
        self.related: list[EdgeRow] = list(related)
        self._links = MemoryLinks(lambda: tables.memory_links(LINK_RELS), lambda: tables.memory_links(TASK_RELS, True)) \
            if cache_links else None
        self._mentions = MentionIndex(tables.all_mentions) if cache_links else None

    # -- writes (inside the caller's transaction) -------------------------------------
    def insert(self, rows: Sequence[EdgeRow], now: datetime | None = None) -> None:
        """Insert stored edges (SIMILAR_TO, FOLLOWS, ABOUT, SOLVES, DERIVED_FROM)."""
        if not rows:
            return
        now = now or datetime.now(timezone.utc).replace(tzinfo=None)
        cols = list(zip(*rows))
        self.tables.insert_edges(cols[0], cols[1], cols[2], cols[3], cols[4], now)
        if self._links is not None:
            self._links.inserted([(s, r, d, w) for s, r, d, w, _ in rows])
        if self._mentions is not None:
            self._mentions.inserted(rows)

    def delete_memories(self, ids: Sequence[int]) -> None:
        """Drop every stored edge of these memories; a session's FOLLOWS chain is relinked around them."""
        gone = [key("memory", int(i)) for i in ids]
        chain = self.tables.follows_touching(gone)
        dead = set(gone)
        nxt = {s: d for s, d, _ in chain}
        relink: list[EdgeRow] = []
        for src, dst, _ in chain:
            if src in dead or dst not in dead:
                continue
            seen = set()
            while dst in dead and dst in nxt and dst not in seen:
                seen.add(dst)
                dst = nxt[dst]
            if dst not in dead:
                relink.append((src, "FOLLOWS", dst, 1.0, "{}"))
        self.tables.delete_edges_of(gone)
        if self._links is not None:
            self._links.drop()
        if self._mentions is not None:
            self._mentions.drop()
        self.insert(relink)

    def clear(self) -> None:
        self.tables.clear_edges()
        if self._links is not None:
            self._links.drop()
        if self._mentions is not None:
            self._mentions.drop()

    def links(self, ids: Sequence[int], rels: Sequence[str]) -> list[tuple[str, str, str, float]] | None:
        """The stored edges of types ``rels`` (of :data:`~selfmem.graph._links.LINK_RELS`) with an end in the
        memories ``ids``, as (src key, rel, dst key, weight), from memory; ``None`` when this graph does not
        hold them (then :meth:`rows` asks the store)."""
        if self._links is None:
            return None
        edges = dict.fromkeys(self._links.edges(ids, rels))  # an edge between two of the ids comes twice
        return [(key("memory", s), r, key("memory", d), w) for s, r, d, w in edges]

    def task_links(self, rel: str, ids: Sequence[int] = (), tasks: Sequence[str] = ()
                   ) -> list[tuple[str, str, str, float]] | None:
        """The stored ``rel`` edges (ABOUT or SOLVES) leaving the memories ``ids`` or entering the task keys
        ``tasks``, as (memory key, rel, task key, weight), from memory; ``None`` when not held."""
        if self._links is None:
            return None
        return [(key("memory", s), r, t, w) for s, r, t, w in self._links.task_edges(ids, tasks, rel)]

    def last_in_sessions(self, sessions: Sequence[str], before: int) -> dict[str, int]:
        """The latest record id below ``before`` of each session."""
        return self.tables.last_in_sessions(sessions, before)

    # -- journal (for a mirror) ----------------------------------------------------------
    def journal(self, op: str, ids: Sequence[int]) -> None:
        """Note a change a mirror has to copy: ``op`` is "upsert", "delete" or "topics"."""
        self.tables.journal_add(op, ids)

    def pending(self, limit: int = 10_000) -> list[tuple[int, str, list[int]]]:
        return self.tables.journal_pending(limit)

    def done(self, upto: int) -> None:
        self.tables.journal_done(upto)

    # -- reads ----------------------------------------------------------------------
    def rows(self, keys: Iterable[str], rels: Sequence[str], direction: str = "both") -> list[Row]:
        """Edges with an end in ``keys`` (``"out"``: starting there, ``"in"``: ending there)."""
        keys = list(dict.fromkeys(keys))
        if not keys:
            return []
        by = _split(keys)
        mids = [int(v) for v in by["memory"]]
        tids = [int(v) for v in by["topic"]]
        out_ok, in_ok = direction in ("out", "both"), direction in ("in", "both")
        got: list[Row] = []
        stored = {r for r in rels if r in STORED_RELS}
        if stored:
            got += [r for r in self.tables.stored_edges(keys, out_ok, in_ok) if r.rel in stored]
        topic_in, session_in = "IN_TOPIC" in rels, "IN_SESSION" in rels
        if out_ok and mids and (topic_in or session_in):  # a memory's own topic and session: one query
            for r, s, c, t, p in self.tables.memory_topic_session(mids):
                if topic_in and t is not None and p is not None:  # both NULL or neither (LEFT JOIN)
                    got.append(Row(key("memory", r), "IN_TOPIC", key("topic", t), p, None, "{}"))
                if session_in and s is not None:
                    got.append(Row(key("memory", r), "IN_SESSION", key("session", s), 1.0, c, "{}"))
        if topic_in and in_ok and tids:
            got += [Row(key("memory", r), "IN_TOPIC", key("topic", t), p, None, "{}") for r, t, p in self.tables.topic_member_rows(tids)]
        if session_in and in_ok and by["session"]:
            got += [Row(key("memory", r), "IN_SESSION", key("session", s), 1.0, c, "{}") for r, s, c in self.tables.session_member_rows(by["session"])]
        if "SUBTOPIC_OF" in rels and tids:
            got += [Row(key("topic", t), "SUBTOPIC_OF", key("topic", p), 1.0, None, "{}") for t, p in self.tables.subtopic_rows(tids if out_ok else [], tids if in_ok else [])]
        if "RELATED_TO" in rels and tids and self.related:
            want = set(keys)
            got += [Row(s, r, d, w, None, p) for s, r, d, w, p in self.related if s in want or d in want]
        if direction != "both":
            want = set(keys)
            got = [r for r in got if (r.src if direction == "out" else r.dst) in want]
        return list({(r.src, r.rel, r.dst): r for r in got}.values())  # an edge between two keys came twice

    def nodes(self, keys: Iterable[str], reached: Iterable[str] = ()) -> dict[str, Node]:
        """The nodes that exist among ``keys`` (a deleted memory or an unknown topic is absent).

        Sessions and tasks in ``reached`` (ends of edges just read) exist by construction: no query.
        """
        out: dict[str, Node] = {}
        known = set(reached)
        rest = []
        for k in dict.fromkeys(keys):
            kind, _, value = k.partition(":")
            if k in known and kind in ("session", "task", "entity"):
                out[k] = Node(k, LABELS[kind], {"name": value})
            else:
                rest.append(k)
        by = _split(rest)
        if by["memory"]:
            for i, kind, text, session in self.tables.memory_nodes([int(v) for v in by["memory"]]):
                out[key("memory", i)] = Node(key("memory", i), "Memory", {"kind": kind, "text": text, "session": session})
        if by["topic"]:
            for i, label, level, _, _ in self.tables.topic_nodes([int(v) for v in by["topic"]]):
                out[key("topic", i)] = Node(key("topic", i), "Topic", {"label": label, "level": int(level)})
        if by["session"]:
            for name in self.tables.session_names(by["session"]):
                out[key("session", name)] = Node(key("session", name), "Session", {"name": name})
        for kind in ("task", "entity"):
            if by[kind]:
                for k in self.tables.task_keys([key(kind, t) for t in by[kind]]):
                    out[k] = Node(k, LABELS[kind], {"name": k.split(":", 1)[1]})
        return out

    # -- the entity layer ----------------------------------------------------------------
    def entities(self, phrases: Iterable[str]) -> list[str]:
        """The entity keys of ``phrases`` that some memory mentions."""
        keys = list(dict.fromkeys(key("entity", p) for p in phrases))
        if self._mentions is not None:
            return self._mentions.known(keys)
        return self.tables.task_keys(keys) if keys else []

    def mentions_of(self, ids: Sequence[int]) -> list[tuple[int, str]]:
        """(memory id, entity key) of the entities these memories mention."""
        if self._mentions is not None:
            return self._mentions.of_records(ids)
        return [(int(m[7:]), e) for m, e in self.tables.mentions_of([key("memory", int(i)) for i in ids])]

    def mentioned_by(self, entity_keys: Sequence[str], max_df: int) -> list[tuple[int, str]]:
        """(memory id, entity key) of the memories that mention those of ``entity_keys`` mentioned at most
        ``max_df`` times."""
        if self._mentions is not None:
            return self._mentions.of_entities(list(entity_keys), max_df)
        return [(int(m[7:]), e) for m, e in self.tables.mentioned_by(list(entity_keys), max_df)]

    def walk(self, starts: Sequence[str], rels: Sequence[str], direction: str, depth: int, limit: int) -> Subgraph:
        """Nodes within ``depth`` edges of ``starts`` (at most ``limit`` besides them) and the edges walked."""
        seen = dict.fromkeys(starts)
        frontier = list(seen)
        edges: dict[tuple[str, str, str], Row] = {}
        for _ in range(depth):
            if not frontier:
                break
            nxt: list[str] = []
            for row in self.rows(frontier, rels, direction):
                src, dst = row.src, row.dst
                for other in (src, dst):
                    if other not in seen and len(seen) - len(starts) < limit:
                        seen[other] = None
                        nxt.append(other)
                if src in seen and dst in seen:
                    edges.setdefault((src, row.rel, dst), row)
            frontier = nxt
        out = self._result(list(seen), edges.values(), reached=set(seen) - set(starts))
        missing = [n.key for n in out.nodes[:len(starts)] if not n.props]
        if missing:
            raise RecordNotFoundError(f"no node {missing[0]!r} in this memory's graph")
        return out

    def path(self, a: str, b: str, rels: Sequence[str], max_depth: int) -> Subgraph | None:
        """A shortest undirected path from ``a`` to ``b`` over ``rels`` (bidirectional breadth-first)."""
        if a == b:
            return self._result([a], [])
        prev: list[dict[str, Row | None]] = [{a: None}, {b: None}]
        frontier = [[a], [b]]
        for _ in range(max_depth):
            side = 0 if len(frontier[0]) <= len(frontier[1]) else 1
            if not frontier[side]:
                return None
            mine, theirs = prev[side], prev[1 - side]
            nxt: list[str] = []
            meet = None
            current = set(frontier[side])
            for row in self.rows(frontier[side], rels):
                for here, other in ((row.src, row.dst), (row.dst, row.src)):
                    if here in current and other not in mine:
                        mine[other] = row
                        nxt.append(other)
                        if other in theirs:
                            meet = other
                            break
                if meet is not None:
                    break
            frontier[side] = nxt
            if meet is not None:
                return self._result(*self._join(meet, prev))
        return None

    @staticmethod
    def _join(meet: str, prev: list[dict[str, Row | None]]) -> tuple[list[str], list[Row]]:
        halves: list[tuple[list[str], list[Row]]] = []
        for side in (0, 1):
            nodes, rows, here = [meet], [], meet
            while (row := prev[side][here]) is not None:
                here = row.dst if row.src == here else row.src
                nodes.append(here)
                rows.append(row)
            halves.append((nodes, rows))
        (na, ra), (nb, rb) = halves
        return na[::-1] + nb[1:], ra[::-1] + rb

    def _result(self, keys: Sequence[str], rows: Iterable[Row], reached: Iterable[str] = ()) -> Subgraph:
        found = self.nodes(keys, reached)
        nodes = tuple(found.get(k) or Node(k, LABELS[k.split(":", 1)[0]]) for k in keys)
        return Subgraph(nodes, tuple(to_edge(r) for r in rows))

    def counts(self) -> Mapping[str, int]:
        """Edges per type (stored and derived)."""
        out = self.tables.edge_counts()
        out["RELATED_TO"] = len(self.related)
        return out

    def dangling(self) -> int:
        """Stored edges whose memory end is not a stored record (0 in a consistent store)."""
        return self.tables.dangling()
