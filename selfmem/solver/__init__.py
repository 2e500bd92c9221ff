"""LLM backends, the memory-using solver loop and the ARC benchmark.

Not built yet; the package exists so the layout of DESIGN.md holds from the start.
"""

__all__: list[str] = []
