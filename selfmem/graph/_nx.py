"""A NetworkX backend: the same copy as the Neo4j export, into an in-process ``networkx.MultiDiGraph``.

It implements the sink side of :class:`~selfmem.graph._mirror.GraphSink` (what ``export`` and the mirror
write through), so ``Memory.to_networkx()`` and ``memctl export --format neo4j`` produce the same nodes and edges.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from .._errors import DependencyError
from . import _cypher as cy

__all__ = ["NetworkxBackend"]


class NetworkxBackend:
    """Nodes keyed like the embedded graph (``"memory:12"``) with their kind in ``type`` ("Memory", "Topic",
    ...; a topic's ``label`` is its keywords), edges keyed by their type."""

    uri = "networkx:"
    database = "memory"

    def __init__(self) -> None:
        try:
            import networkx as nx
        except ImportError as exc:
            raise DependencyError("to_networkx() needs networkx: pip install networkx") from exc
        self.graph = nx.MultiDiGraph()

    def ensure_schema(self) -> None:
        pass

    def upsert_nodes(self, label: str, rows: Sequence[Mapping[str, object]]) -> None:
        prop = "name" if label in ("Session", "Entity") else "id"
        prefix = label.lower()
        for row in rows:
            self.graph.add_node(f"{prefix}:{row[prop]}", type=label, **dict(row))

    def upsert_edges(self, rows: Iterable[tuple[str, str, str, float, datetime | None, str]]) -> None:
        for src, rel, dst, weight, created, props in rows:
            if rel not in cy.ENDS or src not in self.graph:
                continue  # as in Neo4j (_cypher.EDGE): the source must exist, the target is created if missing
            extra = json.loads(props) if props not in ("", "{}") else {}
            self.graph.add_edge(src, dst, key=rel, rel=rel, weight=float(weight), created_at=created, **extra)

    def delete_memories(self, ids: Sequence[int]) -> None:
        self.graph.remove_nodes_from([f"memory:{int(i)}" for i in ids])

    def replace_topic_edges(self, topic_ids: Sequence[int]) -> None:
        keep = {f"topic:{int(i)}" for i in topic_ids}
        drop = [(s, d, k) for s, d, k in self.graph.edges(keys=True) if k in ("IN_TOPIC", "SUBTOPIC_OF", "RELATED_TO")]
        self.graph.remove_edges_from(drop)
        self.graph.remove_nodes_from([n for n, a in list(self.graph.nodes(data=True))
                                      if a.get("type") == "Topic" and n not in keep])

    def close(self) -> None:
        pass
