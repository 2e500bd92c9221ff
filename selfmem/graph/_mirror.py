"""Copying the embedded graph to a sink: the Neo4j live mirror (from the journal) and the one-shot export.

A sink is any :class:`GraphSink`: :class:`~selfmem.graph._neo4j.Neo4jBackend`, or
:class:`~selfmem.graph._nx.NetworkxBackend` (``Memory.to_networkx()``).

Both copy *state*, not events: a journal row names the memories that changed, and the copy reads
their current rows and edges, so replaying a row twice (after a crash between the copy and the
journal's clean-up) changes nothing in Neo4j.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypedDict

from .._files import atomic_write
from ._build import STORED_RELS, key
from ._embedded import EmbeddedGraph, Row
from ._neo4j import Neo4jBackend, credentials

if TYPE_CHECKING:
    from .._config import GraphConfig

__all__ = ["GraphSink", "Neo4jMirror", "copy_memories", "copy_topics", "export", "EXPORT_STATE"]

EXPORT_STATE = "neo4j-export.json"
"""Where ``memctl export --format neo4j`` notes its progress, in the memory directory (removed when done)."""

_MEMORY_OUT = (*STORED_RELS, "IN_SESSION", "IN_TOPIC")


class GraphSink(Protocol):
    """Where a copy of the graph is written; ``uri`` and ``database`` name it in an export's progress file."""

    uri: str
    database: str

    def ensure_schema(self) -> None: ...

    def upsert_nodes(self, label: str, rows: Sequence[Mapping[str, object]]) -> None: ...

    def upsert_edges(self, rows: Iterable[Row]) -> None: ...

    def delete_memories(self, ids: Sequence[int]) -> None: ...

    def replace_topic_edges(self, topic_ids: Sequence[int]) -> None: ...

    def close(self) -> None: ...


def copy_memories(graph: EmbeddedGraph, backend: GraphSink, ids: Sequence[int], *, topics: bool = True) -> None:
    """Write these memories, their sessions, tasks, entities and outgoing edges (IN_TOPIC too when ``topics``)."""
    if not ids:
        return
    rows = graph.tables.memory_rows(ids)
    if not rows:
        return
    keys = [key("memory", r[0]) for r in rows]
    edges = graph.rows(keys, [r for r in _MEMORY_OUT if topics or r != "IN_TOPIC"], "out")
    ends = {e.dst for e in edges}
    backend.upsert_nodes("Session", [{"name": k.split(":", 1)[1]} for k in ends if k.startswith("session:")])
    backend.upsert_nodes("Task", [{"id": k.split(":", 1)[1]} for k in ends if k.startswith("task:")])
    backend.upsert_nodes("Entity", [{"name": k.split(":", 1)[1]} for k in ends if k.startswith("entity:")])
    if topics:
        backend.upsert_nodes("Topic", _topic_rows(graph, [int(k.split(":", 1)[1]) for k in ends
                                                          if k.startswith("topic:")]))
    backend.upsert_nodes("Memory", [
        {"id": int(i), "kind": kind, "text": text, "session": session, "created_at": _iso(created),
         "importance": float(imp), "metadata": meta} for i, kind, text, session, created, imp, meta in rows])
    backend.upsert_edges(edges)


def _iso(ts: datetime) -> str:
    return ts.isoformat() + "Z"


class _TopicNode(TypedDict):
    id: int
    label: str
    level: int
    keywords: list[str]
    provisional: bool


def _topic_rows(graph: EmbeddedGraph, ids: Sequence[int] | None = None) -> list[_TopicNode]:
    """Topic nodes as rows (all of them, or those of ``ids`` that exist)."""
    found = graph.tables.topic_nodes(ids)
    return [{"id": int(i), "label": label, "level": int(level), "keywords": json.loads(kw), "provisional": bool(p)}
            for i, label, level, kw, p in found]


def copy_topics(graph: EmbeddedGraph, backend: GraphSink, batch: int = 5000) -> None:
    """Replace the topic tree in Neo4j: topics, SUBTOPIC_OF, RELATED_TO and every IN_TOPIC edge."""
    topics = _topic_rows(graph)
    backend.replace_topic_edges([t["id"] for t in topics])
    backend.upsert_nodes("Topic", topics)
    tree: list[Row] = [Row(key("topic", i), "SUBTOPIC_OF", key("topic", p), 1.0, None, "{}") for i, p in
                       graph.tables.topic_parent_pairs()]
    backend.upsert_edges(tree + [Row(s, r, d, w, None, p) for s, r, d, w, p in graph.related])
    for chunk in graph.tables.iter_in_topic(batch):
        backend.upsert_edges(chunk)


class Neo4jMirror:
    """Copies the journal of committed changes to Neo4j, oldest first, and clears what it copied."""

    def __init__(self, backend: GraphSink) -> None:
        self.backend = backend
        self.error: str | None = None
        self._schema = False

    @classmethod
    def from_config(cls, cfg: GraphConfig) -> Neo4jMirror:
        uri, user, password, database = credentials(defaults=cfg)
        return cls(Neo4jBackend(uri, user, password, database))

    def sync(self, graph: EmbeddedGraph) -> int:
        """Copy every pending journal row; returns how many were copied. Raises GraphError (rows kept)."""
        done = 0
        try:
            if not self._schema:
                self.backend.ensure_schema()
                self._schema = True
            while pending := graph.pending(500):
                for seq, op, ids in pending:
                    if op == "upsert":
                        copy_memories(graph, self.backend, ids)
                    elif op == "delete":
                        self.backend.delete_memories(ids)
                    else:
                        copy_topics(graph, self.backend)
                    graph.done(seq)
                    done += 1
        except Exception as exc:
            self.error = str(exc)
            raise
        self.error = None
        return done


def export(graph: EmbeddedGraph, backend: GraphSink, state: Path | None, *, batch: int = 1000, restart: bool = False,
           progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Copy the whole graph to Neo4j in batches of memories, resumable.

    ``state`` (a small JSON file, or None for none) records the last memory id copied to this
    uri/database; a rerun after an interruption starts after it (``restart`` ignores it). MERGE makes
    a full rerun a no-op.
    ``progress(n)`` is called with the memories copied by each batch. Returns counts.
    """
    backend.ensure_schema()
    target = f"{backend.uri}|{backend.database}"
    last = -1
    if state is not None and state.is_file() and not restart:
        saved = json.loads(state.read_text())
        if saved.get("target") == target:
            last = int(saved.get("last_id", -1))
    copied = 0
    while True:
        ids = graph.tables.record_ids_after(last, batch)
        if not ids:
            break
        copy_memories(graph, backend, ids, topics=False)
        last = ids[-1]
        copied += len(ids)
        if state is not None:
            atomic_write(state, json.dumps({"target": target, "last_id": last}))
        if progress is not None:
            progress(len(ids))
    copy_topics(graph, backend)
    if state is not None and state.is_file():
        os.remove(state)
    counts = dict(graph.counts())
    counts["memories"] = copied
    return counts
