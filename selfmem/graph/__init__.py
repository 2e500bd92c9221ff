"""The knowledge graph: edge building, walks over the store's graph tables, the Neo4j backend and mirror.

``_build`` makes the edges of new records; ``_embedded.EmbeddedGraph`` walks them through the
``GraphTables`` protocol (implemented by ``selfmem.store``, which owns the SQL); ``_neo4j`` and
``_mirror`` copy the graph to a Neo4j server; ``_nx`` to networkx. Reached through ``Memory.neighbours``,
``path``, ``subgraph``, ``to_networkx`` and ``export_neo4j``.
"""

__all__: list[str] = []
