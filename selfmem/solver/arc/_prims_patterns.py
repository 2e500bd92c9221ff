"""Primitives from the training tasks still failing after the third round (fourth round).

Patterns carried on: a pattern repeating down or across (sliding sideways too) extended to a square or to
twice its length, or restored under a blank rectangle; a diagonal period filling the background; a grid
mirrored below itself around its last row. Regions: background regions flooded from a seed colour,
enclosed square holes and the largest empty squares painted, outlines around shapes (not specks), shapes
taking the colour of a framed template of the same outline. Lines: a ray bouncing between the side edges,
diagonal tails carried to the edge. Divided grids: one cell per part (its main colour; where the most
coloured cells are). Summaries: a mirror-symmetry flag, a bar chart of the colours, two shapes slid
together into a rectangle, with low weights.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ._grid import MAX_SIDE, Grid, objects
from ._prims_grid import continue_pattern
from ._prims_parts import _blocks
from ._primitives import primitive

_FOUR = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool)


# -- patterns carried on ----------------------------------------------------------------------------
def _shift(a: Grid, s: int) -> Grid:
    """Rows of ``a`` moved right by ``s`` cells (left when negative), background coming in."""
    out = np.zeros_like(a)
    w = a.shape[1]
    if s >= 0:
        out[:, s:] = a[:, :w - s]
    else:
        out[:, :w + s] = a[:, -s:]
    return out


def _row_period(g: Grid) -> tuple[int, int] | None:
    """The smallest (p, s) with row y + p equal to row y moved right by s, for every y (s = 0 tried first)."""
    h, w = g.shape
    firsts = [int(np.flatnonzero(r)[0]) if r.any() else -1 for r in g]
    for p in range(1, h):
        top, bottom = g[:h - p], g[p:]
        shifts = [0]
        for y in range(h - p):
            if firsts[y] >= 0 and firsts[y + p] >= 0:
                if firsts[y + p] != firsts[y]:
                    shifts.append(firsts[y + p] - firsts[y])
                break
        for s in shifts:
            moved = _shift(top, s)
            if abs(s) < w and np.array_equal(moved, bottom) and (s == 0 or np.count_nonzero(moved) == np.count_nonzero(top)):
                return p, s
    return None


def _extend_rows(g: Grid, rows: int) -> Grid | None:
    h, _ = g.shape
    if rows <= h or rows > MAX_SIDE or not g.any():
        return None
    found = _row_period(g)
    if found is None:
        return None
    p, s = found
    out = np.zeros((rows, g.shape[1]), np.int8)
    out[:h] = g
    for y in range(h, rows):
        out[y] = _shift(out[y - p:y - p + 1], s)[0]
    return out


def _extend(g: Grid, rows_down: int | None, cols_across: int | None) -> Grid | None:
    if rows_down is not None:
        return _extend_rows(g, rows_down)
    out = _extend_rows(g.T, cols_across or 0)
    return None if out is None else out.T.copy()


@primitive(weight=0.3)
def period_square(g: Grid) -> Grid | None:
    """A pattern repeating down or across (sliding sideways too) extended to a square of the longer side."""
    h, w = g.shape
    return None if h == w else _extend(g, w, None) if h < w else _extend(g, None, h)


@primitive(weight=0.25)
def period_double(g: Grid) -> Grid | None:
    """A pattern repeating along a grid's longer side extended to twice that length."""
    h, w = g.shape
    return None if h == w else _extend(g, None, 2 * w) if w > h else _extend(g, 2 * h, None)


@primitive(weight=0.3)
def period_patch(g: Grid) -> Grid | None:
    """What lies under the one blank rectangle of a periodic pattern, restored from the pattern's period."""
    hole = g == 0
    if not hole.any() or hole.sum() * 4 > g.size:
        return None
    ys, xs = np.nonzero(hole)
    box = np.s_[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    if not hole[box].all():
        return None
    out = continue_pattern(g)
    return None if out is None else out[box].copy()


@primitive(weight=0.3)
def diag_pattern(g: Grid) -> Grid | None:
    """The background filled by the smallest diagonal period k: every coloured cell with the same (row + col)
    mod k, or the same (row - col) mod k, has one colour."""
    h, w = g.shape
    coloured = g != 0
    if coloured.all() or not coloured.any():
        return None
    yy, xx = np.indices(g.shape)
    vals = g[coloured]
    for k in range(2, max(h, w) + 1):
        for key in (np.mod(yy + xx, k), np.mod(yy - xx, k)):
            keys = key[coloured]
            table = np.zeros(k, np.int8)
            table[keys] = vals
            seen = np.zeros(k, bool)
            seen[keys] = True
            if seen.all() and (table[keys] == vals).all():
                return table[key]
    return None


@primitive(weight=0.3)
def mirror_down_shared(g: Grid) -> Grid | None:
    """The grid with its upside-down mirror below it, the two sharing the last row."""
    if g.shape[0] < 2 or 2 * g.shape[0] - 1 > MAX_SIDE:
        return None
    return np.concatenate([g, g[-2::-1]]).astype(np.int8)


# -- regions -------------------------------------------------------------------------------------
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


@primitive(weight=0.3, colour=True)
def outline_big(g: Grid, c: int) -> Grid | None:
    """Background cells touching (8 neighbours) a shape of two or more cells painted ``c``; lone cells
    get no outline."""
    big = np.zeros(g.shape, bool)
    for col in np.unique(g[g != 0]).tolist():
        labels, _ = ndimage.label(g == col, structure=_FOUR)
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        big |= sizes[labels] >= 2
    if not big.any():
        return None
    out = g.copy()
    out[ndimage.binary_dilation(big, structure=np.ones((3, 3), bool)) & (g == 0)] = c
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


# -- lines ------------------------------------------------------------------------------------------
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


# -- divided grids -----------------------------------------------------------------------------------
def _parts(g: Grid) -> list[list[Grid]] | None:
    blocks = _blocks(g)
    if blocks is None or len({len(r) for r in blocks}) != 1:
        return None
    return [[cell for _, _, cell in row] for row in blocks]


@primitive(weight=0.3)
def cells_any_major(g: Grid) -> Grid | None:
    """One cell per part of a grid divided by full lines (background lines too): the part's main colour."""
    parts = _parts(g)
    if parts is None:
        return None
    out = np.zeros((len(parts), len(parts[0])), np.int8)
    for y, row in enumerate(parts):
        for x, cell in enumerate(row):
            vals, counts = np.unique(cell[cell != 0], return_counts=True)
            out[y, x] = vals[np.argmax(counts)] if len(vals) else 0
    return out


@primitive(weight=0.3)
def cells_most(g: Grid) -> Grid | None:
    """One cell per part of a divided grid: 1 where the part has the most coloured cells, else 0."""
    parts = _parts(g)
    if parts is None:
        return None
    n = np.array([[np.count_nonzero(cell) for cell in row] for row in parts])
    return None if n.max() == n.min() else (n == n.max()).astype(np.int8)


# -- summaries -----------------------------------------------------------------------------------------
@primitive(weight=0.3)
def flag_mirror(g: Grid) -> Grid | None:
    """A 1x1 grid: 1 when the grid equals its left-right mirror, else 0 (a colour map names the answer)."""
    return np.array([[int(np.array_equal(g, g[:, ::-1]))]], np.int8)


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


@primitive(weight=0.3)
def fit_two(g: Grid) -> Grid | None:
    """Two shapes slid together (not turned) so that they fill a rectangle exactly: that rectangle."""
    objs = objects(g, diagonal=True)
    if len(objs) != 2:
        return None
    a, b = objs[0].grid, objs[1].grid
    n = int(np.count_nonzero(a) + np.count_nonzero(b))
    (ha, wa), (hb, wb) = a.shape, b.shape
    if n > 100:
        return None
    for rows in range(max(ha, hb), ha + hb + 1):
        cols = n // rows
        if n % rows or not max(wa, wb) <= cols <= wa + wb:
            continue
        for ya in range(rows - ha + 1):
            for xa in range(cols - wa + 1):
                canvas = np.zeros((rows, cols), np.int8)
                canvas[ya:ya + ha, xa:xa + wa] = a
                ys, xs = np.nonzero(canvas == 0)
                if len(ys) != np.count_nonzero(b) or len(ys) == 0:
                    continue
                box = np.s_[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
                if canvas[box].shape == b.shape and np.array_equal(canvas[box] == 0, b != 0):
                    canvas[box] += b
                    return canvas
    return None
