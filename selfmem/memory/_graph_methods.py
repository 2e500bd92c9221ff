"""The knowledge graph from ``Memory``: walks, paths, subgraphs and exports (a method group of ``Memory``)."""

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
from ._core import MemoryCore, guarded

__all__ = ["GraphMethods"]


class GraphMethods(MemoryCore):
    """Reading the memory's knowledge graph (mixed into :class:`selfmem.Memory`)."""

    def _graph_for(self) -> EmbeddedGraph:
        if not self._graph.available:
            raise ReadOnlyError("this memory has no graph yet (made by an older selfmem); open it once without "
                                "read_only to build it")
        return self._graph.graph

    @guarded()
    def neighbours(self, node: int | str, rel: str | Sequence[str] | None = None, *, direction: str = "both",
                   depth: int = 1, limit: int = 100) -> Subgraph:
        """The graph around one node: the nodes within ``depth`` edges and the edges walked.

        Parameters
        ----------
        node : int or str
            A memory id, or a key: ``"memory:12"``, ``"topic:3"``, ``"session:<name>"``, ``"task:<id>"``.
        rel : str or list of str, optional
            Edge types to follow (IN_TOPIC, SUBTOPIC_OF, RELATED_TO, SIMILAR_TO, IN_SESSION, FOLLOWS,
            ABOUT, SOLVES, DERIVED_FROM); all by default.
        direction : {"both", "out", "in"}
            Follow edges leaving the node, entering it, or both.
        depth : int
            Steps (1 to 6).
        limit : int
            Nodes returned at most, besides the start (breadth-first order).

        Returns
        -------
        Subgraph
            ``nodes[0]`` is the start; ``edges`` are those walked.
        """
        graph = self._graph_for()
        start = key(*parse_key(node))  # walk() raises RecordNotFoundError for a missing start
        rels = g.check_rels(rel)
        direction, depth, limit = g.check_walk(direction, depth, limit)
        return graph.walk([start], rels, direction, depth, limit)

    @guarded()
    def path(self, a: int | str, b: int | str, *, max_depth: int = 4,
             rel: str | Sequence[str] | None = None) -> Subgraph | None:
        """A shortest path between two nodes, ignoring edge direction (None if none within ``max_depth``).

        ``nodes`` run from ``a`` to ``b``; ``edges[i]`` joins ``nodes[i]`` and ``nodes[i + 1]``.
        """
        graph = self._graph_for()
        start, end = g.check_node(graph, a), g.check_node(graph, b)
        rels = g.check_rels(rel)
        _, max_depth, _ = g.check_walk("both", max_depth, 1)
        return graph.path(start, end, rels, max_depth)

    @guarded()
    def subgraph(self, nodes: Sequence[int | str], *, depth: int = 1, rel: str | Sequence[str] | None = None,
                 limit: int = 1000) -> Subgraph:
        """The nodes given, those within ``depth`` edges of them (0: none) and the edges among them all."""
        graph = self._graph_for()
        if isinstance(nodes, (str, bytes)) or not isinstance(nodes, Sequence) or not nodes:
            raise InvalidInputError("nodes must be a non-empty list of memory ids or node keys")
        starts = list(dict.fromkeys(g.check_node(graph, n) for n in nodes))
        rels = g.check_rels(rel)
        if not isinstance(depth, int) or isinstance(depth, bool) or not 0 <= depth <= 6:
            raise InvalidInputError(f"depth must be an integer from 0 to 6, got {depth!r}")
        limit = v.check_k(limit, "limit")
        walked = graph.walk(starts, rels, "both", depth, limit)
        within = set(walked.keys)
        rows = {(r[0], r[1], r[2]): r for r in graph.rows(walked.keys, rels) if r[0] in within and r[2] in within}
        return Subgraph(walked.nodes, tuple(graph_edge(r) for r in rows.values()))

    @guarded()
    def to_networkx(self) -> Any:
        """The whole knowledge graph as a ``networkx.MultiDiGraph`` (the same nodes and edges a Neo4j export
        writes: node keys like ``"memory:12"``, node attribute ``type``, edge key and attribute ``rel``)."""
        sink = NetworkxBackend()
        export(self._graph_for(), sink, None)
        return sink.graph

    @guarded()
    def export_neo4j(self, uri: str | None = None, user: str | None = None, password: str | None = None,
                     database: str | None = None, *, restart: bool = False, progress: bool | None = None
                     ) -> dict[str, int]:
        """Copy the whole graph to a Neo4j server (``selfmem[neo4j]``), in resumable, idempotent batches.

        Parameters
        ----------
        uri, user, password, database : str, optional
            Default to ``SELFMEM_NEO4J_URI`` / ``_USER`` / ``_PASSWORD`` / ``_DATABASE``, then ``config.graph``.
        restart : bool
            Ignore the progress left by an interrupted export (``neo4j-export.json`` in the directory).
        progress : bool, optional
            Show a bar (default: on a terminal).

        Returns
        -------
        dict
            Edges per type and ``memories`` copied. Raises :class:`GraphError` if Neo4j fails.
        """
        v.check_flag(restart, "restart")
        v.check_flag(progress, "progress", optional=True)
        graph = self._graph_for()
        backend = Neo4jBackend(*credentials(uri, user, password, database, defaults=self.config.graph))
        try:
            with self._bar(self._live().count(), "export to Neo4j", "memories", progress) as shown:
                return export(graph, backend, self.directory / EXPORT_STATE, restart=restart, progress=shown.update)
        finally:
            backend.close()
