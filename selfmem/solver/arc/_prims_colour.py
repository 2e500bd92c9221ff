"""Colour primitives: dropping a colour, recolouring objects by size rank or by a 4-way size rule, by the
nearest colour, by the colour on a shape's lines or a framed key, swapping two colours, boxes painted
round objects, and lists of colours (by count, by position, as a bar chart).

Each function is marked with :func:`~._primitives.primitive`; :mod:`._registry` folds variants into
primitives with options and fixes the order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from ._grid import CROSS, MAX_SIDE, Grid, Obj, colour_counts, objects
from ._primitives import primitive
from ._prims_base import _FOUR


def _major(g: Grid) -> int | None:
    """The most frequent non-zero colour (ties: the lowest), ``None`` when there is none."""
    counts = colour_counts(g)
    if counts is None:
        vals, counts = np.unique(g[g != 0], return_counts=True)
        return int(vals[np.argmax(counts)]) if len(vals) else None
    counts[0] = 0
    return int(np.argmax(counts)) if counts.any() else None


@primitive(weight=0.6)
def drop_major_color(g: Grid) -> Grid | None:
    c = _major(g)
    return None if c is None else np.where(g == c, 0, g).astype(np.int8)


def _paint(g: Grid, objs: Sequence[Obj], colours: Sequence[int], base: Grid | None = None) -> Grid:
    """Each object's cells in its colour, on background (or on a copy of ``base``)."""
    out = np.zeros_like(g) if base is None else base.copy()
    for o, c in zip(objs, colours):
        h, w = o.grid.shape
        box = out[o.top:o.top + h, o.left:o.left + w]
        box[o.grid != 0] = c
    return out


@primitive(weight=0.6)
def size_rank(g: Grid) -> Grid | None:
    """Paint each one-colour object with its size rank (1 = largest); a colour map then names the ranks."""
    objs = objects(g, diagonal=True)
    sizes = sorted({o.size for o in objs}, reverse=True)
    if not 1 < len(sizes) <= 9:
        return None
    return _paint(g, objs, [sizes.index(o.size) + 1 for o in objs])


@primitive(weight=0.4)
def drop_minor_color(g: Grid) -> Grid | None:
    vals, counts = np.unique(g[g != 0], return_counts=True)
    if len(vals) < 2:
        return None
    return np.where(g == vals[np.argmin(counts)], 0, g).astype(np.int8)


@primitive(weight=0.3)
def color_boxes(g: Grid) -> Grid | None:
    """Fill, over background, the bounding box of every colour's cells with that colour (rarest colour on top)."""
    out = g.copy()
    vals, counts = np.unique(g[g != 0], return_counts=True)
    for v in vals[np.argsort(counts, kind="stable")]:
        ys, xs = np.nonzero(g == v)
        box = out[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
        box[box == 0] = v
    return out


@primitive(weight=0.3)
def recolor_nearest(g: Grid) -> Grid | None:
    """Cells of the least frequent colour take the colour of the nearest cell of another colour."""
    vals, counts = np.unique(g[g != 0], return_counts=True)
    if len(vals) < 2:
        return None
    minor = vals[np.argmin(counts)]
    others = (g != 0) & (g != minor)
    _, (iy, ix) = ndimage.distance_transform_cdt(~others, metric="taxicab", return_indices=True)
    return np.where(g == minor, g[iy, ix], g).astype(np.int8)


def _column(colours: list[int]) -> Grid | None:
    return np.array(colours, np.int8)[:, None] if 0 < len(colours) <= MAX_SIDE else None


@primitive(weight=0.3)
def colors_by_count(g: Grid) -> Grid | None:
    """A column of the non-background colours, most frequent first (ties: lower colour first)."""
    vals, counts = np.unique(g[g != 0], return_counts=True)
    order = np.lexsort((vals, -counts))
    return _column([int(v) for v in vals[order]])


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
def swap_colors(g: Grid) -> Grid | None:
    """The grid's two non-background colours exchanged."""
    v = np.unique(g[g != 0])
    if len(v) != 2:
        return None
    a, b = v
    return np.where(g == a, b, np.where(g == b, a, g)).astype(np.int8)


@primitive(weight=0.3)
def recolor_by_lines(g: Grid) -> Grid | None:
    """Shapes of the most common colour take the one other colour in the rows they span, else in the columns
    they span; cells of shapes with neither take the one other colour of their own row or column."""
    vals, counts = np.unique(g[g != 0], return_counts=True)
    if len(vals) < 2:
        return None
    major = int(vals[np.argmax(counts)])
    out = g.copy()

    def other(a: np.ndarray) -> int | None:
        counts = colour_counts(a)
        s = set((np.unique(a) if counts is None else np.flatnonzero(counts)).tolist()) - {0, major}
        return s.pop() if len(s) == 1 else None

    labels, _ = ndimage.label(g == major, CROSS)
    for i, sl in enumerate(ndimage.find_objects(labels), 1):
        c = other(g[sl[0], :]) or other(g[:, sl[1]])
        if c is not None:
            out[labels == i] = c
            continue
        for y, x in zip(*np.nonzero(labels == i)):
            c = other(g[y]) or other(g[:, x])
            if c is not None:
                out[y, x] = c
    return None if (out == g).all() else out


@primitive(weight=0.3)
def size_color4(g: Grid) -> Grid | None:
    """Every one-colour 4-connected object painted with its size (1-9); a colour map then names the sizes."""
    masks = []
    for c in np.unique(g[g != 0]).tolist():
        labels, n = ndimage.label(g == c, CROSS)
        masks += [labels == i for i in range(1, n + 1)]
    if len(masks) < 2 or max(int(m.sum()) for m in masks) > 9:
        return None
    out = np.zeros_like(g)
    for m in masks:
        out[m] = m.sum()
    return out


@primitive(weight=0.3)
def match_framed_color(g: Grid) -> Grid | None:
    """Shapes with the outline of a template shut inside a closed one-colour frame take the template's colour."""
    shapes = []
    for col in np.unique(g[g != 0]).tolist():
        labels, _ = ndimage.label(g == col, structure=_FOUR)
        shapes += [(labels == i, sl, col) for i, sl in enumerate(ndimage.find_objects(labels), 1)]
    boxed = np.zeros(g.shape, bool)
    templates = []
    for m, _, _ in shapes:
        if m.sum() < 4:
            continue
        rest, k = ndimage.label(~m, structure=_FOUR)
        if k < 2:
            continue
        sizes = np.bincount(rest.ravel())
        sizes[0] = 0
        edge = np.unique(np.concatenate([rest[0], rest[-1], rest[:, 0], rest[:, -1]]))
        inner = (rest > 0) & (rest != sizes.argmax()) & ~np.isin(rest, edge)
        for m2, sl2, col2 in shapes:
            if m2 is not m and not (m2 & ~inner).any():
                templates.append((m2[sl2], col2))
                boxed |= m | inner
    if not templates:
        return None
    out = g.copy()
    for m, sl, _ in shapes:
        if (m & boxed).any():
            continue
        for tm, tcol in templates:
            if tm.shape == m[sl].shape and (tm == m[sl]).all():
                out[sl][m[sl]] = tcol
                break
    return out


@primitive(weight=0.25)
def colors_histogram(g: Grid) -> Grid | None:
    """A bar chart: one column per colour, most frequent first, filled from the top for its count of cells."""
    vals, counts = np.unique(g[g != 0], return_counts=True)
    if len(vals) < 2 or counts.max() > MAX_SIDE or len(set(counts.tolist())) != len(counts):
        return None
    out = np.zeros((int(counts.max()), len(vals)), np.int8)
    for x, i in enumerate(np.argsort(-counts, kind="stable")):
        out[:counts[i], x] = vals[i]
    return out
