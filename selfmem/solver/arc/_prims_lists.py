"""Primitives that summarise a grid as a list: colours ranked by count, by object size or by position,
the coloured cells in reading order, a count drawn as a diagonal; a picture drawn with a shape; shapes painted in the colour of a legend cell.

Many ARC outputs are a short strip of colours (a column of the colours from most to least frequent, a
row of the colours in the order they appear left to right) or a small picture of a count. Registered
after every other module (:mod:`._dsl` imports this last), with low weights.
"""

from __future__ import annotations

import numpy as np

from ._grid import MAX_SIDE, Grid, Obj
from ._prims_objects import split_lr, split_tb
from ._prims_grid import _minor
from ._primitives import primitive


def _column(colours: list[int]) -> Grid | None:
    return np.array(colours, np.int8)[:, None] if 0 < len(colours) <= MAX_SIDE else None


@primitive(weight=0.3)
def colors_by_count(g: Grid) -> Grid | None:
    """A column of the non-background colours, most frequent first (ties: lower colour first)."""
    vals, counts = np.unique(g[g != 0], return_counts=True)
    order = np.lexsort((vals, -counts))
    return _column([int(v) for v in vals[order]])


@primitive("O", "G", weight=0.3)
def colors_by_size(objs: tuple[Obj, ...]) -> Grid | None:
    """A column of the objects' main colours, largest object first (ties: reading order)."""
    ranked = sorted(range(len(objs)), key=lambda i: -objs[i].size)
    return _column([objs[i].colors[0] for i in ranked])


@primitive(weight=0.3)
def colors_in_order(g: Grid) -> Grid | None:
    """The colours in the order they lie along the grid's longer spread: a row when they change from left
    to right, a column when they change from top to bottom (each colour placed at its mean position)."""
    vals = [int(v) for v in np.unique(g)]
    if len(vals) < 2:
        return None
    ys = [float(np.nonzero(g == v)[0].mean()) for v in vals]
    xs = [float(np.nonzero(g == v)[1].mean()) for v in vals]
    if np.ptp(xs) >= np.ptp(ys):
        row = [v for _, v in sorted(zip(xs, vals))]
        return np.array([row], np.int8)
    return _column([v for _, v in sorted(zip(ys, vals))])


@primitive(weight=0.3)
def cells_row(g: Grid) -> Grid | None:
    """Every coloured cell, in reading order, as one row."""
    cells = g[g != 0]
    return np.array([cells], np.int8) if 0 < len(cells) <= MAX_SIDE else None


@primitive("I", "G", weight=0.3, colour=True)
def diag_of(n: int, c: int) -> Grid | None:
    """An n x n grid with colour ``c`` on its main diagonal."""
    return (np.eye(n, dtype=np.int8) * c) if 0 < n <= MAX_SIDE else None


@primitive("G", "P", weight=0.3)
def split_long(g: Grid) -> tuple[Grid, Grid] | None:
    """The two halves across the longer side (left and right of a wide grid, top and bottom of a tall one)."""
    h, w = g.shape
    return split_lr(g) if w > h else split_tb(g) if h > w else None


@primitive("P", "G", weight=0.3)
def p_kron(p: tuple[Grid, Grid]) -> Grid | None:
    """A pair of a one-colour shape and a picture of colours: every coloured cell of the picture becomes the
    shape in that colour (the Kronecker product of the picture and the shape's mask)."""
    a, b = p
    ca, cb = len(np.unique(a[a != 0])), len(np.unique(b[b != 0]))
    if ca == 1 and cb != 1:
        shape, picture = a, b
    elif cb == 1 and ca != 1:
        shape, picture = b, a
    elif ca == 1 and cb == 1:
        shape, picture = b, a
    else:
        return None
    out = np.kron(picture, (shape != 0).astype(np.int8)).astype(np.int8)
    return out if max(out.shape) <= MAX_SIDE else None


@primitive(weight=0.3)
def paint_minor(g: Grid) -> Grid | None:
    """The least frequent colour (a legend, often one cell) is removed and every other coloured cell takes it."""
    minor = _minor(g)
    if minor is None:
        return None
    return np.where((g != 0) & (g != minor), minor, 0).astype(np.int8)
