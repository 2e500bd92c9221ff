"""Topic discovery: reduction, Dirichlet-process topics, the topic tree and labels.

Not built yet (see the open topics issue); the package exists so the layout of
DESIGN.md holds from the start.
"""

__all__: list[str] = []
