"""Primitives over objects, counts and pairs of grids: ``G -> O``, ``O -> G``, ``O/G -> I``, ``I -> G``,
``G -> P`` and ``P -> G``.

Each function is marked with :func:`~._primitives.primitive` and its prior weight; see
:mod:`._primitives`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ._grid import MAX_SIDE, Grid, Obj, objects
from ._primitives import primitive


@primitive("G", "O", weight=0.8)
def objs_color(g: Grid) -> tuple[Obj, ...] | None:
    """Single-colour 4-connected objects."""
    return objects(g) or None


@primitive("G", "O", weight=1.0)
def objs_multi(g: Grid) -> tuple[Obj, ...] | None:
    """Multicolour 8-connected objects."""
    return objects(g, diagonal=True, multicolor=True) or None


@primitive("G", "O", weight=0.4)
def color_groups(g: Grid) -> tuple[Obj, ...] | None:
    """One object per colour: all its cells, cropped to their box."""
    out = []
    for c in np.unique(g[g != 0]):
        ys, xs = np.nonzero(g == c)
        box = g[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
        out.append(Obj(np.where(box == c, box, 0).astype(np.int8), int(ys.min()), int(xs.min()), len(ys), (int(c),)))
    return tuple(out) or None


@primitive("G", "O", weight=0.6)
def cells_grid(g: Grid) -> tuple[Obj, ...] | None:
    """The cells of a grid divided by full rows and columns of one colour, as objects (reading order)."""
    def lines(a: Grid) -> list[int]:
        return [i for i in range(a.shape[0]) if a[i, 0] != 0 and (a[i] == a[i, 0]).all()]
    rows, cols = lines(g), lines(g.T)
    if not rows and not cols:
        return None
    out = []
    rb = [-1] + rows + [g.shape[0]]
    cb = [-1] + cols + [g.shape[1]]
    for r0, r1 in zip(rb, rb[1:]):
        for c0, c1 in zip(cb, cb[1:]):
            if r1 - r0 > 1 and c1 - c0 > 1:
                cell = g[r0 + 1:r1, c0 + 1:c1]
                vals, counts = np.unique(cell[cell != 0], return_counts=True)
                colors = tuple(int(v) for v in vals[np.argsort(-counts, kind="stable")])
                out.append(Obj(cell, r0 + 1, c0 + 1, int(np.count_nonzero(cell)), colors))
    return tuple(out) if len(out) > 1 else None


def _pick(objs: tuple[Obj, ...], key: Callable[[Obj], Any]) -> Grid | None:
    """The one object with the highest ``key`` (None when two share it)."""
    if len(objs) < 2:
        return None
    scores = [key(o) for o in objs]
    best = max(scores)
    if scores.count(best) > 1:
        return None
    return objs[scores.index(best)].grid


@primitive("O", "G", weight=1.0)
def obj_largest(objs: tuple[Obj, ...]) -> Grid | None:
    return _pick(objs, lambda o: o.size)


@primitive("O", "G", weight=0.8)
def obj_smallest(objs: tuple[Obj, ...]) -> Grid | None:
    return _pick(objs, lambda o: -o.size)


@primitive("O", "G", weight=0.5)
def obj_biggest_box(objs: tuple[Obj, ...]) -> Grid | None:
    return _pick(objs, lambda o: o.grid.size)


@primitive("O", "G", weight=0.4)
def obj_first(objs: tuple[Obj, ...]) -> Grid | None:
    return objs[0].grid if len(objs) > 1 else None


@primitive("O", "G", weight=0.4)
def obj_last(objs: tuple[Obj, ...]) -> Grid | None:
    return objs[-1].grid if len(objs) > 1 else None


@primitive("O", "G", weight=0.6)
def obj_unique_color(objs: tuple[Obj, ...]) -> Grid | None:
    """The object whose main colour no other object has."""
    firsts = [o.colors[0] for o in objs]
    lone = [o for o in objs if firsts.count(o.colors[0]) == 1]
    return lone[0].grid if len(objs) > 2 and len(lone) == 1 else None


@primitive("O", "G", weight=0.6)
def obj_unique_shape(objs: tuple[Obj, ...]) -> Grid | None:
    """The object whose shape (mask) no other object has."""
    shapes = [(o.grid != 0).tobytes() + bytes(o.grid.shape) for o in objs]
    lone = [o for o, s in zip(objs, shapes) if shapes.count(s) == 1]
    return lone[0].grid if len(objs) > 2 and len(lone) == 1 else None


@primitive("O", "G", weight=0.5)
def obj_most_colors(objs: tuple[Obj, ...]) -> Grid | None:
    return _pick(objs, lambda o: len(o.colors))


@primitive("O", "I", weight=0.4)
def obj_count(objs: tuple[Obj, ...]) -> int:
    return len(objs)


@primitive("G", "I", weight=0.3)
def count_colors(g: Grid) -> int | None:
    n = len(np.unique(g[g != 0]))
    return n or None


@primitive("G", "I", weight=0.3)
def count_cells(g: Grid) -> int | None:
    n = int(np.count_nonzero(g))
    return n if 0 < n <= MAX_SIDE else None


@primitive("I", "G", weight=0.5, colour=True)
def row_of(n: int, c: int) -> Grid | None:
    return np.full((1, n), c, np.int8) if 0 < n <= MAX_SIDE else None


@primitive("I", "G", weight=0.4, colour=True)
def col_of(n: int, c: int) -> Grid | None:
    return np.full((n, 1), c, np.int8) if 0 < n <= MAX_SIDE else None


def _split(g: Grid) -> tuple[Grid, Grid] | None:
    """Left and right parts: at a one-colour separator column, else the halves (skipping a middle column)."""
    w = g.shape[1]
    for j in range(1, w - 1):
        col = g[:, j]
        if col[0] != 0 and (col == col[0]).all() and j * 2 + 1 == w:
            return g[:, :j], g[:, j + 1:]
    if w % 2 == 0:
        return g[:, :w // 2], g[:, w // 2:]
    a, b = g[:, :w // 2], g[:, w // 2 + 1:]
    return (a, b) if a.shape == b.shape else None


@primitive("G", "P", weight=0.6)
def split_lr(g: Grid) -> tuple[Grid, Grid] | None:
    return _split(g) if g.shape[1] > 1 else None


@primitive("G", "P", weight=0.6)
def split_tb(g: Grid) -> tuple[Grid, Grid] | None:
    if g.shape[0] < 2:
        return None
    pair = _split(g.T)
    return None if pair is None else (pair[0].T, pair[1].T)


@primitive("P", "G", weight=0.6, colour=True)
def p_and(p: tuple[Grid, Grid], c: int) -> Grid:
    return np.where((p[0] != 0) & (p[1] != 0), c, 0).astype(np.int8)


@primitive("P", "G", weight=0.6, colour=True)
def p_or(p: tuple[Grid, Grid], c: int) -> Grid:
    return np.where((p[0] != 0) | (p[1] != 0), c, 0).astype(np.int8)


@primitive("P", "G", weight=0.6, colour=True)
def p_xor(p: tuple[Grid, Grid], c: int) -> Grid:
    return np.where((p[0] != 0) ^ (p[1] != 0), c, 0).astype(np.int8)


@primitive("P", "G", weight=0.6, colour=True)
def p_nor(p: tuple[Grid, Grid], c: int) -> Grid:
    return np.where((p[0] == 0) & (p[1] == 0), c, 0).astype(np.int8)


@primitive("P", "G", weight=0.5)
def p_overlay(p: tuple[Grid, Grid]) -> Grid:
    return np.where(p[0] != 0, p[0], p[1]).astype(np.int8)


@primitive("P", "G", weight=0.5)
def p_underlay(p: tuple[Grid, Grid]) -> Grid:
    return np.where(p[1] != 0, p[1], p[0]).astype(np.int8)
