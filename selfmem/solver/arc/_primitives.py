"""The primitive registry: every DSL primitive is a small pure function registered with its types.

Values have one of four types: ``G`` a grid, ``O`` a tuple of objects, ``P`` a pair of grids of one
shape, ``I`` a count. A primitive maps one type to another, optionally taking a colour argument (the
candidates are fitted to the task: the colours its train outputs use), and carries a weight: its prior
probability before any memory (normalised over all primitives). A primitive that does not apply (no
objects, a grid that would exceed 30 cells a side) returns ``None`` and the search skips it.

The primitives live in ``_prims_*`` modules, each function registered where it is defined::

    @primitive("G", "O", weight=0.8)
    def objs_color(g): ...

Registration order is the search's tie-break order, so modules are imported in a fixed order (see
:mod:`._dsl`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ._grid import MAX_SIDE, Grid

__all__ = ["Primitive", "PRIMITIVES", "TYPES", "primitive", "fits"]

TYPES = ("G", "O", "P", "I")
"""Value types: grid, objects, pair of grids, integer count."""


@dataclass(frozen=True)
class Primitive:
    """One DSL primitive: ``fn(value[, colour]) -> value or None`` from type ``src`` to type ``dst``."""

    name: str
    fn: Callable[..., Any]
    src: str
    dst: str
    colour_arg: bool = False
    weight: float = 1.0


PRIMITIVES: dict[str, Primitive] = {}
"""Every registered primitive by name, in registration order."""

F = TypeVar("F", bound=Callable[..., Any])


def primitive(src: str = "G", dst: str = "G", *, weight: float = 1.0, colour: bool = False) -> Callable[[F], F]:
    """Register the decorated function as a primitive named after it.

    Parameters
    ----------
    src, dst : {"G", "O", "P", "I"}
        The types it takes and returns.
    weight : float
        Its prior weight (> 0) before any memory.
    colour : bool
        Whether it takes a colour argument (0-9) after the value.
    """
    if src not in TYPES or dst not in TYPES or not weight > 0:
        raise ValueError(f"primitive types are {TYPES} and the weight is > 0, got {src!r}->{dst!r}, {weight}")

    def register(fn: F) -> F:
        name = fn.__name__
        if name in PRIMITIVES:
            raise ValueError(f"primitive {name!r} is registered twice")
        PRIMITIVES[name] = Primitive(name, fn, src, dst, colour, weight)
        return fn

    return register


def fits(g: Grid) -> Grid | None:
    """``g`` when it is at most 30 cells a side, else ``None``."""
    return g if max(g.shape) <= MAX_SIDE else None
