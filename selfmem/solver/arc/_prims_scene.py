"""Objects on their canvas: filter them by a predicate, transform each, recolour them, paint them back.

The object splits (``objs(...)``) return a :class:`Scene`: the objects plus the grid they came from, so
that a program can work on objects and reassemble a grid of the same size::

    objs(multi) | keep(inside) | paint             # erase the objects touching the border
    objs(color) | keep(largest) | recolor(4) | paint_over   # recolour the largest object
    objs(multi) | each(flip_h) | paint             # mirror every object in place

Predicates (``keep``) and per-object transforms (``each``) are arguments, shared by every split, instead
of one primitive per combination. ``select(...)`` (in :mod:`._prims_objects`) crops one object instead.
The search tries both paints on every scene it reaches (:mod:`._search`), so a filter or transform
followed by a paint costs one node more than the filter alone, not a place in the frontier.

Why these stay with fewer than 3 training tasks each (docs/arc-primitives.md: keep 1, each 2, paint 3,
recolor and paint_over 0 at 2,000 nodes): they are the object type's operations, the compositions that
replaced 30 one-task macros (erase the border objects, keep the largest, hollow shapes, ...); taking them
out would leave objects only a crop (``select``), and concept tasks (objects filtered, transformed or
recoloured in place) need them in combinations that training at this budget does not exercise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from ._grid import Grid, Obj
from ._primitives import primitive
from ._prims_base import _holes, _shape_key, _symmetric

__all__ = ["Scene", "scene", "PREDICATES", "TRANSFORMS"]


class Scene(tuple):
    """A tuple of objects (:class:`~._grid.Obj`) with ``source``, the grid they were split from."""

    source: Grid

    def __new__(cls, objs: Iterable[Obj], source: Grid) -> Scene:
        self = super().__new__(cls, tuple(objs))
        self.source = source
        return self


def scene(objs: tuple[Obj, ...] | None, source: Grid) -> Scene | None:
    """``objs`` on the grid they came from (None when there are none)."""
    return Scene(objs, source) if objs else None


def _touches(o: Obj, shape: tuple[int, ...]) -> bool:
    h, w = o.grid.shape
    return o.top == 0 or o.left == 0 or o.top + h == shape[0] or o.left + w == shape[1]


def _counts(keys: list) -> list[int]:
    return [keys.count(k) for k in keys]


def _largest(s: Scene) -> list[bool]:
    m = max(o.size for o in s)
    return [o.size == m for o in s]


def _smallest(s: Scene) -> list[bool]:
    m = min(o.size for o in s)
    return [o.size == m for o in s]


def _common(keys: list) -> list[bool]:
    c = _counts(keys)
    return [n == max(c) for n in c]


PREDICATES: dict[str, Callable[[Scene], list[bool]]] = {
    "largest": _largest,
    "not_largest": lambda s: [not b for b in _largest(s)],
    "smallest": _smallest,
    "not_smallest": lambda s: [not b for b in _smallest(s)],
    "border": lambda s: [_touches(o, s.source.shape) for o in s],
    "inside": lambda s: [not _touches(o, s.source.shape) for o in s],
    "unique_color": lambda s: [n == 1 for n in _counts([o.colors[0] for o in s])],
    "common_color": lambda s: _common([o.colors[0] for o in s]),
    "unique_shape": lambda s: [n == 1 for n in _counts([_shape_key(o) for o in s])],
    "common_shape": lambda s: _common([_shape_key(o) for o in s]),
    "single": lambda s: [o.size == 1 for o in s],
    "multi": lambda s: [o.size > 1 for o in s],
    "symmetric": lambda s: [_symmetric(o) for o in s],
    "asymmetric": lambda s: [not _symmetric(o) for o in s],
    "holes": lambda s: [_holes(o) > 0 for o in s],
    "solid": lambda s: [_holes(o) == 0 for o in s],
    "rect": lambda s: [o.size == o.grid.size for o in s],
    "multicolor": lambda s: [len(o.colors) > 1 for o in s],
}
"""Object predicates, each over the whole scene (``largest`` compares sizes): name -> flags per object."""


def _keeper(name: str) -> Callable[[Scene], Scene | None]:
    test = PREDICATES[name]

    def keep(s: Scene) -> Scene | None:
        if not isinstance(s, Scene):
            return None
        flags = test(s)
        if all(flags) or not any(flags):
            return None  # nothing removed, or nothing left: no new value
        return Scene((o for o, f in zip(s, flags) if f), s.source)

    keep.__name__ = f"filter_{name}"
    return keep


def _fill_box(g: Grid) -> Grid:
    vals, counts = np.unique(g[g != 0], return_counts=True)
    return np.full_like(g, vals[np.argmax(counts)])


def _hollow(g: Grid) -> Grid | None:
    if min(g.shape) < 3:
        return None
    out = g.copy()
    out[1:-1, 1:-1] = 0
    return out


TRANSFORMS: dict[str, Callable[[Grid], Grid | None]] = {
    "flip_h": lambda g: g[:, ::-1].copy(),
    "flip_v": lambda g: g[::-1].copy(),
    "rot180": lambda g: g[::-1, ::-1].copy(),
    "transpose": lambda g: g.T.copy() if g.shape[0] == g.shape[1] else None,
    "fill_box": _fill_box,
    "hollow": _hollow,
}
"""Per-object transforms that keep the object's box: name -> function of its cropped grid."""


def _mapper(name: str) -> Callable[[Scene], Scene | None]:
    fn = TRANSFORMS[name]

    def each(s: Scene) -> Scene | None:
        if not isinstance(s, Scene):
            return None
        out = []
        for o in s:
            g = fn(o.grid)
            if g is None:
                return None
            out.append(Obj(g.astype(np.int8), o.top, o.left, int(np.count_nonzero(g)), o.colors))
        if all(np.array_equal(a.grid, b.grid) for a, b in zip(out, s)):
            return None
        return Scene(out, s.source)

    each.__name__ = f"each_{name}"
    return each


# -- the primitives (the registry folds filter_* and each_* into keep(...) and each(...)) ----------------
_KEEP_WEIGHTS = {"largest": 0.5, "inside": 0.5, "border": 0.4, "not_largest": 0.3, "smallest": 0.3,
                 "not_smallest": 0.3, "single": 0.3, "multi": 0.4}
_EACH_WEIGHTS = {"flip_h": 0.4, "flip_v": 0.4, "fill_box": 0.4}

for _n in PREDICATES:
    globals()[f"filter_{_n}"] = primitive("O", "O", weight=_KEEP_WEIGHTS.get(_n, 0.2))(_keeper(_n))
for _n in TRANSFORMS:
    globals()[f"each_{_n}"] = primitive("O", "O", weight=_EACH_WEIGHTS.get(_n, 0.25))(_mapper(_n))


@primitive("O", "O", weight=0.5, colour=True)
def recolor(s: Scene, c: int) -> Scene | None:
    """Every object's cells in colour ``c``."""
    if not isinstance(s, Scene) or all(o.colors == (c,) for o in s):
        return None
    return Scene((Obj(np.where(o.grid != 0, c, 0).astype(np.int8), o.top, o.left, o.size, (c,)) for o in s),
                 s.source)


def _paint_on(out: Grid, s: Scene) -> Grid:
    """Each object's cells over ``out`` (in place; an object reaching past the edge is cut there)."""
    for o in s:
        box = out[o.top:o.top + o.grid.shape[0], o.left:o.left + o.grid.shape[1]]
        cells = o.grid[:box.shape[0], :box.shape[1]]
        box[cells != 0] = cells[cells != 0]
    return out


@primitive("O", "G", weight=0.8)
def paint(s: Scene) -> Grid | None:
    """The objects on an empty canvas the size of the grid they came from."""
    if not isinstance(s, Scene):
        return None
    return _paint_on(np.zeros_like(s.source), s)


@primitive("O", "G", weight=0.8)
def paint_over(s: Scene) -> Grid | None:
    """The objects painted over the grid they came from (recoloured or moved objects over the rest)."""
    if not isinstance(s, Scene):
        return None
    return _paint_on(s.source.copy(), s)
