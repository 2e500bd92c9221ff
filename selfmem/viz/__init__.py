"""Pictures of a memory: the standalone HTML memory map (UMAP + Plotly)."""

from ._map import MapInfo, layout, memory_map

__all__ = ["memory_map", "layout", "MapInfo"]
