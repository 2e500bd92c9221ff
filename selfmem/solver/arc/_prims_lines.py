"""Lines and fills: joining cells of one colour, rays (straight, diagonal, bouncing, to the largest
shape, diagonal tails), filling enclosed regions, boxes, empty lines, square holes and empty squares,
and flooding from a seed.

Each function is marked with :func:`~._primitives.primitive`; :mod:`._registry` folds variants into
primitives with options and fixes the order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from ._grid import CROSS, Grid, objects
from ._primitives import primitive
from ._prims_base import _FOUR


@primitive(weight=0.8)
def connect_pairs(g: Grid) -> Grid | None:
    """Draw a line between two cells of one colour in the same row or column (over background)."""
    out = _join(g, True, True)
    return None if np.array_equal(out, g) else out


def _rays(g: Grid, dirs: Sequence[tuple[int, int]]) -> Grid | None:
    if np.count_nonzero(g) > 40:  # too many sources for a ray task (and the loop below is per cell)
        return None
    out = g.copy()
    h, w = g.shape
    for y, x in zip(*np.nonzero(g)):
        c = g[y, x]
        for dy, dx in dirs:
            yy, xx = y + dy, x + dx
            while 0 <= yy < h and 0 <= xx < w and g[yy, xx] == 0:
                if out[yy, xx] == 0:
                    out[yy, xx] = c
                yy, xx = yy + dy, xx + dx
    return None if np.array_equal(out, g) else out


@primitive(weight=0.5)
def rays_v(g: Grid) -> Grid | None:
    return _rays(g, ((1, 0), (-1, 0)))


@primitive(weight=0.5)
def rays_h(g: Grid) -> Grid | None:
    return _rays(g, ((0, 1), (0, -1)))


@primitive(weight=0.5)
def rays_cross(g: Grid) -> Grid | None:
    return _rays(g, ((1, 0), (-1, 0), (0, 1), (0, -1)))


@primitive(weight=0.4)
def rays_diag(g: Grid) -> Grid | None:
    return _rays(g, ((1, 1), (-1, -1), (1, -1), (-1, 1)))


@primitive(weight=0.4)
def rays_down(g: Grid) -> Grid | None:
    return _rays(g, ((1, 0),))


@primitive(weight=1.0, colour=True)
def fill_enclosed(g: Grid, c: int) -> Grid | None:
    """Paint background cells that cannot reach the border (holes inside shapes) with colour ``c``."""
    holes = ndimage.binary_fill_holes(g != 0, CROSS) & (g == 0)
    return np.where(holes, c, g).astype(np.int8) if holes.any() else None


@primitive(weight=0.5, colour=True)
def fill_boxes(g: Grid, c: int) -> Grid | None:
    """Paint the background inside each multicolour object's bounding box with ``c``."""
    out = g.copy()
    for o in objects(g, diagonal=True, multicolor=True):
        h, w = o.grid.shape
        box = out[o.top:o.top + h, o.left:o.left + w]
        box[box == 0] = c
    return None if np.array_equal(out, g) else out


def _join(g: Grid, rows: bool, cols: bool, c: int | None = None) -> Grid:
    """Cells of one colour in a row (then a column) joined over background, in that colour or ``c``; where
    two colours' segments cross, the lower colour (rows before columns) keeps the cell."""
    out = g.copy()
    colours = np.flatnonzero(np.bincount(g.ravel(), minlength=10)[1:]) + 1
    if not len(colours):
        return out
    m = g[None] == colours.astype(g.dtype)[:, None, None]  # (colours, h, w): every colour at once
    for axis, on in ((2, rows), (1, cols)):
        if not on:
            continue
        after = np.maximum.accumulate(m, axis=axis)
        rev = m[:, :, ::-1] if axis == 2 else m[:, ::-1, :]
        before = np.maximum.accumulate(rev, axis=axis)
        between = after & (before[:, :, ::-1] if axis == 2 else before[:, ::-1, :])
        free = between & (out == 0)[None]
        hit = free.any(axis=0)
        first = colours[np.argmax(free, axis=0)]  # the lowest colour joining over a cell takes it
        out[hit] = first[hit] if c is None else c
    return out


@primitive(weight=0.4)
def connect_rows(g: Grid) -> Grid | None:
    """Join cells of one colour in the same row with that colour (over background); columns untouched."""
    return _join(g, True, False)


@primitive(weight=0.4)
def connect_cols(g: Grid) -> Grid | None:
    """Join cells of one colour in the same column with that colour (over background)."""
    return _join(g, False, True)


def _diagonal_between(m: np.ndarray) -> np.ndarray:
    """Cells on a down-right diagonal between two cells of ``m`` (inclusive), shape (h, w) bool."""
    h = m.shape[0]
    down, up = m.copy(), m.copy()
    for i in range(1, h):  # reached from a cell of m up-left of it
        down[i, 1:] |= down[i - 1, :-1]
    for i in range(h - 2, -1, -1):  # reaches a cell of m down-right of it
        up[i, :-1] |= up[i + 1, 1:]
    return down & up


@primitive(weight=0.3)
def connect_diag(g: Grid) -> Grid | None:
    """Join cells of one colour on the same diagonal or anti-diagonal with that colour (over background)."""
    out = g.copy()
    colours = np.flatnonzero(np.bincount(g.ravel(), minlength=10)[1:]) + 1
    for src, view in ((g, out), (g[:, ::-1], out[:, ::-1])):  # diagonals, then anti-diagonals
        for v in colours:
            view[_diagonal_between(src == v) & (view == 0)] = v
    return out


@primitive(weight=0.4, colour=True)
def connect_with(g: Grid, c: int) -> Grid | None:
    """Join cells of one colour in the same row or column with colour ``c`` (over background)."""
    return _join(g, True, True, c)


@primitive(weight=0.3)
def rays_to_largest(g: Grid) -> Grid | None:
    """Lone cells in line with the largest shape's box draw a line of their colour towards it, up to its
    edge (the background is the most common colour)."""
    vals, counts = np.unique(g, return_counts=True)
    bg = vals[np.argmax(counts)]
    labels, n = ndimage.label(g != bg, CROSS)
    if n < 2:
        return None
    biggest = int(np.argmax(np.bincount(labels.ravel())[1:])) + 1
    big = ndimage.find_objects(labels)[biggest - 1]
    (y0, y1), (x0, x1) = (big[0].start, big[0].stop), (big[1].start, big[1].stop)
    out = g.copy()
    for y, x in zip(*np.nonzero((g != bg) & (labels != biggest))):
        if y0 <= y < y1 and not x0 <= x < x1:
            seg = out[y, x + 1:x0] if x < x0 else out[y, x1:x]
        elif x0 <= x < x1 and not y0 <= y < y1:
            seg = out[y + 1:y0, x] if y < y0 else out[y1:y, x]
        else:
            continue
        seg[seg == bg] = g[y, x]
    return out


@primitive(weight=0.3, colour=True)
def fill_empty_lines(g: Grid, c: int) -> Grid | None:
    """Every all-background row and column painted ``c``."""
    rows, cols = ~g.any(axis=1), ~g.any(axis=0)
    if not rows.any() and not cols.any():
        return None
    out = g.copy()
    out[rows, :] = c
    out[:, cols] = c
    return out


@primitive(weight=0.4, colour=True)
def flood_from(g: Grid, c: int) -> Grid | None:
    """Background regions (4-connected) touching a cell of colour ``c`` painted ``c``."""
    seed = g == c
    labels, n = ndimage.label(g == 0, structure=_FOUR)
    if not seed.any() or n == 0:
        return None
    ids = np.unique(labels[ndimage.binary_dilation(seed, structure=_FOUR) & (labels > 0)])
    if ids.size == 0:
        return None
    out = g.copy()
    out[np.isin(labels, ids) & (labels > 0)] = c
    return out


@primitive(weight=0.3, colour=True)
def fill_square_holes(g: Grid, c: int) -> Grid | None:
    """Enclosed background regions (4-connected, off the border) that are full squares painted ``c``; a grid
    whose holes are all of other shapes stays as it is."""
    labels, n = ndimage.label(g == 0, structure=_FOUR)
    edge = set(np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])).tolist())
    out = g.copy()
    holes = False
    for i, sl in enumerate(ndimage.find_objects(labels), 1):
        if i in edge:
            continue
        holes = True
        part = labels[sl] == i
        if part.all() and part.shape[0] == part.shape[1]:
            out[sl][part] = c
    return out if holes else None


@primitive(weight=0.3, colour=True)
def fill_empty_squares(g: Grid, c: int) -> Grid | None:
    """All-background k x k squares painted ``c`` (k the largest such side, at least 2 and at most half the
    shorter side), taken in reading order without overlapping."""
    h, w = g.shape
    s = np.zeros((h + 1, w + 1), np.int32)
    s[1:, 1:] = (g == 0).astype(np.int32).cumsum(0).cumsum(1)
    for k in range(min(h, w), 1, -1):
        window = s[k:, k:] - s[:-k, k:] - s[k:, :-k] + s[:-k, :-k] == k * k
        if window.any():
            break
    else:
        return None
    if 2 * k > min(h, w):  # a blank half of the grid is no hole
        return None
    taken = np.zeros((h, w), bool)
    for y, x in zip(*np.nonzero(window)):
        if not taken[y:y + k, x:x + k].any():
            taken[y:y + k, x:x + k] = True
    out = g.copy()
    out[taken] = c
    return out


@primitive(weight=0.3)
def bounce_ray(g: Grid) -> Grid | None:
    """The grid's one coloured cell, on its top or bottom row, starts a diagonal line across the grid that
    bounces between the left and right edges."""
    ys, xs = np.nonzero(g)
    h, w = g.shape
    if len(ys) != 1 or w < 2 or int(ys[0]) not in (0, h - 1):
        return None
    y, x = int(ys[0]), int(xs[0])
    dy, dx = (-1 if y == h - 1 else 1), (-1 if x == w - 1 else 1)
    out = g.copy()
    while 0 <= y + dy < h:
        if not 0 <= x + dx < w:
            dx = -dx
        y, x = y + dy, x + dx
        out[y, x] = g[ys[0], xs[0]]
    return out


@primitive(weight=0.3)
def extend_diag_tails(g: Grid) -> Grid | None:
    """A coloured cell touching its shape only at one corner goes on as a diagonal line, away from that
    corner, to the edge of the grid (or the first coloured cell)."""
    h, w = g.shape
    nz = np.pad(g != 0, 1)
    orth = nz[:-2, 1:-1] | nz[2:, 1:-1] | nz[1:-1, :-2] | nz[1:-1, 2:]
    out = g.copy()
    drawn = False
    for y, x in zip(*np.nonzero((g != 0) & ~orth)):
        corners = [(dy, dx) for dy, dx in ((1, 1), (1, -1), (-1, 1), (-1, -1)) if nz[1 + y + dy, 1 + x + dx]]
        if len(corners) != 1:
            continue
        dy, dx = -corners[0][0], -corners[0][1]
        yy, xx = y + dy, x + dx
        while 0 <= yy < h and 0 <= xx < w and g[yy, xx] == 0:
            out[yy, xx] = g[y, x]
            yy, xx, drawn = yy + dy, xx + dx, True
    return out if drawn else None
