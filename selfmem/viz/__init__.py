"""Pictures of a memory: the standalone HTML memory map (UMAP + Plotly)."""

from ._map import MapInfo, layout, map_figure, memory_map

__all__ = ["memory_map", "map_figure", "layout", "MapInfo"]
