"""The knowledge graph from ``Memory``: ``neighbours``, ``path``, ``subgraph``, ``to_networkx``, ``export_neo4j``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._errors import InvalidInputError, ReadOnlyError
from .._types import Subgraph
from ..graph._build import key, parse_key
from ..graph._embedded import EmbeddedGraph
from ..graph._embedded import to_edge as graph_edge
from ..graph._mirror import EXPORT_STATE, export
from ..graph._neo4j import Neo4jBackend, credentials
from ..graph._nx import NetworkxBackend
from . import _graph_api as g
from . import _validate as v
from ._state import MemoryState

__all__ = ["GraphQueries"]


class GraphQueries:
    """Reading one handle's knowledge graph (the caller holds the handle's guard)."""

    def __init__(self, state: MemoryState) -> None:
        self.state = state

    def _graph(self) -> EmbeddedGraph:
        if not self.state.graph.available:
            raise ReadOnlyError("this memory has no graph yet (made by an older selfmem); open it once without "
                                "read_only to build it")
        return self.state.graph.graph

    def neighbours(self, node: int | str, rel: str | Sequence[str] | None = None, *, direction: str = "both",
                   depth: int = 1, limit: int = 100) -> Subgraph:
        """``Memory.neighbours``: breadth-first from one node."""
        graph = self._graph()
        start = key(*parse_key(node))  # walk() raises RecordNotFoundError for a missing start
        rels = g.check_rels(rel, entities=start.startswith("entity:"))
        direction, depth, limit = g.check_walk(direction, depth, limit)
        return graph.walk([start], rels, direction, depth, limit)

    def path(self, a: int | str, b: int | str, *, max_depth: int = 4,
             rel: str | Sequence[str] | None = None) -> Subgraph | None:
        """``Memory.path``: a shortest undirected path, or None."""
        graph = self._graph()
        start, end = g.check_node(graph, a), g.check_node(graph, b)
        rels = g.check_rels(rel, entities=any(n.startswith("entity:") for n in (start, end)))
        _, max_depth, _ = g.check_walk("both", max_depth, 1)
        return graph.path(start, end, rels, max_depth)

    def subgraph(self, nodes: Sequence[int | str], *, depth: int = 1, rel: str | Sequence[str] | None = None,
                 limit: int = 1000) -> Subgraph:
        """``Memory.subgraph``: the nodes, those within ``depth`` of them, and the edges among them all."""
        graph = self._graph()
        if isinstance(nodes, (str, bytes)) or not isinstance(nodes, Sequence) or not nodes:
            raise InvalidInputError("nodes must be a non-empty list of memory ids or node keys")
        starts = list(dict.fromkeys(g.check_node(graph, n) for n in nodes))
        rels = g.check_rels(rel, entities=any(n.startswith("entity:") for n in starts))
        if not isinstance(depth, int) or isinstance(depth, bool) or not 0 <= depth <= 6:
            raise InvalidInputError(f"depth must be an integer from 0 to 6, got {depth!r}")
        limit = v.check_k(limit, "limit")
        walked = graph.walk(starts, rels, "both", depth, limit)
        within = set(walked.keys)
        rows = {(r.src, r.rel, r.dst): r for r in graph.rows(walked.keys, rels) if r.src in within and r.dst in within}
        return Subgraph(walked.nodes, tuple(graph_edge(r) for r in rows.values()))

    def to_networkx(self) -> Any:
        """``Memory.to_networkx``: the whole graph as a ``networkx.MultiDiGraph``."""
        sink = NetworkxBackend()
        export(self._graph(), sink, None)
        return sink.graph

    def export_neo4j(self, uri: str | None = None, user: str | None = None, password: str | None = None,
                     database: str | None = None, *, restart: bool = False, progress: bool | None = None
                     ) -> dict[str, int]:
        """``Memory.export_neo4j``: resumable, idempotent batches to a Neo4j server."""
        v.check_flag(restart, "restart")
        v.check_flag(progress, "progress", optional=True)
        s = self.state
        graph = self._graph()
        backend = Neo4jBackend(*credentials(uri, user, password, database, defaults=s.config.graph))
        try:
            with s.bar(s.live().count(), "export to Neo4j", "memories", progress) as shown:
                return export(graph, backend, s.directory / EXPORT_STATE, restart=restart, progress=shown.update)
        finally:
            backend.close()
