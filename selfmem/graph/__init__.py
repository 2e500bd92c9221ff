"""The knowledge graph: GraphStore protocol, embedded (DuckDB) and Neo4j backends.

Not built yet; the package exists so the layout of DESIGN.md holds from the start.
"""

__all__: list[str] = []
