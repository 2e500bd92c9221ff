"""Primitives added from the ceiling table: what the training tasks left unsolved at 20,000 nodes needed.

Inpainting: a grid symmetric about some axis (mirror lines not necessarily through the centre, the
diagonals) or periodic along its rows or columns, with a region hidden under a mask colour (solid
rectangles of one colour, another colour, or background), gets the hidden cells back from their mirror
images; ``inpaint_crop`` returns only what was under a single rectangle. Lines: same-colour cells joined
along rows only, columns only or diagonals, or joined in a colour of their own. Moves: the most frequent
colour slides towards the rest until it touches. Regions: every colour's bounding box filled; lone cells
drawing lines up to the largest shape; the rarest colour's cells taking the nearest other colour.
Blocks: a strip of squares split into objects.

Registered after the other modules (:mod:`._dsl` imports this last), with low weights. Unlike most
earlier primitives, the line primitives return the grid unchanged where nothing joins (a task's train
pairs often include one): the search drops a node whose values equal an earlier node's anyway.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import numpy as np
from scipy import ndimage

from ._grid import Grid, Obj, by_grid
from ._prims_more import _shift
from ._primitives import primitive

# -- inpainting ------------------------------------------------------------------------


def _mask_colours(g: Grid) -> list[int]:
    """Colours that could hide cells, most likely first: those whose every component is a solid rectangle,
    then the other colours covering less than half the grid, then background."""
    solid: list[int] = []
    other: list[int] = []
    for c in np.unique(g).tolist():
        if c == 0 or (g == c).sum() >= g.size / 2:
            continue
        labels, _ = ndimage.label(g == c)
        boxes = ndimage.find_objects(labels)
        (solid if all((labels[sl] == i).all() for i, sl in enumerate(boxes, 1)) else other).append(int(c))
    return solid + other + ([0] if (g == 0).any() else [])


def _mirrors(h: int, w: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Cell maps ``(ys, xs)``: mirror lines, diagonals and shifts along rows or columns (a period) that
    keep at least half the grid inside."""
    yy, xx = np.mgrid[0:h, 0:w]
    for p in range(1, max(h, w) // 2 + 1):
        for dy, dx in ((p, 0), (-p, 0), (0, p), (0, -p)):
            if abs(dy) <= h // 2 and abs(dx) <= w // 2:
                yield yy + dy, xx + dx
    for a in range(h // 2, 2 * h - h // 2 - 1):
        yield a - yy, xx
    for a in range(w // 2, 2 * w - w // 2 - 1):
        yield yy, a - xx
    for d in range(-(min(h, w) // 2), min(h, w) // 2 + 1):
        yield xx + d, yy - d
    for s in range(min(h, w) // 2, h + w - 1 - min(h, w) // 2):
        yield s - xx, s - yy


@functools.lru_cache(maxsize=256)
def _mirror_maps(h: int, w: int) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]:
    """:func:`_mirrors` of an (h, w) grid as (inside, ys, xs) with the outside cells sent to (0, 0), once per shape."""
    out = []
    for ys, xs in _mirrors(h, w):
        inside = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
        arrays = (inside, np.where(inside, ys, 0), np.where(inside, xs, 0))
        for a in arrays:
            a.flags.writeable = False  # shared by every grid of this shape
        out.append(arrays)
    return tuple(out)


@by_grid(256)
def _inpaint(g: Grid) -> tuple[Grid, np.ndarray] | None:
    """:func:`_restore` of ``g``, kept for the last 256 grids (``inpaint_sym`` and ``inpaint_crop`` restore the
    same grids; the arrays are read-only)."""
    found = _restore(g)
    if found is not None:
        for a in found:
            a.flags.writeable = False
    return found


def _restore(g: Grid) -> tuple[Grid, np.ndarray] | None:
    h, w = g.shape
    for m in _mask_colours(g):
        hidden = g == m
        known = ~hidden
        maps = []
        for inside, ysc, xsc in _mirror_maps(h, w):
            both = inside & known & known[ysc, xsc]
            if both.sum() >= max(6, known.sum() * 0.5) and (g[both] == g[ysc, xsc][both]).all():
                maps.append((inside, ysc, xsc))
        if not maps:
            continue
        out, todo = g.copy(), hidden.copy()
        for _ in range(4):
            for inside, ysc, xsc in maps:
                take = todo & inside & ~todo[ysc, xsc]
                out[take] = out[ysc, xsc][take]
                todo &= ~take
            if not todo.any():
                return out.astype(np.int8), hidden
    return None


@primitive(weight=0.4)
def inpaint_sym(g: Grid) -> Grid | None:
    """Cells under a mask colour restored from their mirror images (the grid's symmetries, found from the rest)."""
    found = _inpaint(g)
    return None if found is None else found[0]


@primitive(weight=0.4)
def inpaint_crop(g: Grid) -> Grid | None:
    """What was hidden under one mask rectangle, restored from the grid's symmetries."""
    found = _inpaint(g)
    if found is None:
        return None
    out, hidden = found
    ys, xs = np.nonzero(hidden)
    box = np.s_[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    return out[box] if hidden[box].all() and hidden.sum() < g.size else None


# -- lines -----------------------------------------------------------------------------


def _join(g: Grid, rows: bool, cols: bool, c: int | None = None) -> Grid | None:
    out = g.copy()
    views = [(g, out)] * rows + [(g.T, out.T)] * cols
    for view, res in views:
        for i, row in enumerate(view):
            for v in np.unique(row[row != 0]):
                idx = np.flatnonzero(row == v)
                if len(idx) >= 2:
                    seg = res[i, idx[0]:idx[-1] + 1]
                    seg[seg == 0] = v if c is None else c
    return out


@primitive(weight=0.4)
def connect_rows(g: Grid) -> Grid | None:
    """Join cells of one colour in the same row with that colour (over background); columns untouched."""
    return _join(g, True, False)


@primitive(weight=0.4)
def connect_cols(g: Grid) -> Grid | None:
    """Join cells of one colour in the same column with that colour (over background)."""
    return _join(g, False, True)


@primitive(weight=0.3)
def connect_diag(g: Grid) -> Grid | None:
    """Join cells of one colour on the same diagonal or anti-diagonal with that colour (over background)."""
    out = g.copy()
    h, w = g.shape
    for flip in (False, True):
        view = out[:, ::-1] if flip else out
        src = g[:, ::-1] if flip else g
        for d in range(-h + 1, w):
            line, cells = np.diagonal(src, d), np.diagonal(view, d).copy()
            for v in np.unique(line[line != 0]):
                idx = np.flatnonzero(line == v)
                if len(idx) >= 2:
                    seg = cells[idx[0]:idx[-1] + 1]
                    seg[seg == 0] = v
            ys = np.arange(max(0, -d), max(0, -d) + len(cells))
            view[ys, ys + d] = cells
    return out


@primitive(weight=0.4, colour=True)
def connect_with(g: Grid, c: int) -> Grid | None:
    """Join cells of one colour in the same row or column with colour ``c`` (over background)."""
    return _join(g, True, True, c)


# -- moves -----------------------------------------------------------------------------


def _slide(g: Grid, mover: int) -> Grid | None:
    """The colour ``mover`` moves, rigidly, towards the other colours' cells until it touches them."""
    move, rest = g == mover, (g != 0) & (g != mover)
    if not move.any() or not rest.any():
        return None
    (my, mx), (ry, rx) = np.nonzero(move), np.nonzero(rest)
    if mx.max() >= rx.min() and rx.max() >= mx.min():
        step = (1, 0) if my.max() < ry.min() else (-1, 0) if my.min() > ry.max() else None
    elif my.max() >= ry.min() and ry.max() >= my.min():
        step = (0, 1) if mx.max() < rx.min() else (0, -1) if mx.min() > rx.max() else None
    else:
        return None
    if step is None:
        return None
    layer = np.where(move, g, 0).astype(np.int8)
    base = np.where(move, 0, g).astype(np.int8)
    moved = 0
    while True:
        nxt = _shift(layer, *step)
        if nxt is None or np.count_nonzero(nxt) < np.count_nonzero(layer) or ((nxt != 0) & (base != 0)).any():
            break
        layer, moved = nxt, moved + 1
    return np.where(layer != 0, layer, base).astype(np.int8) if moved else None


def _by_count(g: Grid) -> list[int]:
    vals, counts = np.unique(g[g != 0], return_counts=True)
    return [int(v) for v in vals[np.argsort(-counts, kind="stable")]]


@primitive(weight=0.3)
def slide_major(g: Grid) -> Grid | None:
    """The most frequent colour moves towards the others until it touches them."""
    order = _by_count(g)
    return _slide(g, order[0]) if len(order) >= 2 else None


# -- regions ---------------------------------------------------------------------------


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
def rays_to_largest(g: Grid) -> Grid | None:
    """Lone cells in line with the largest shape's box draw a line of their colour towards it, up to its
    edge (the background is the most common colour)."""
    vals, counts = np.unique(g, return_counts=True)
    bg = vals[np.argmax(counts)]
    labels, n = ndimage.label(g != bg)
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


# -- blocks ----------------------------------------------------------------------------


def _blocks(g: Grid, rows: int, cols: int) -> tuple[Obj, ...] | None:
    h, w = g.shape
    if h % rows or w % cols or h // rows < 1 or w // cols < 1:
        return None
    bh, bw = h // rows, w // cols
    out = []
    for r in range(rows):
        for c in range(cols):
            cell = g[r * bh:(r + 1) * bh, c * bw:(c + 1) * bw]
            vals, counts = np.unique(cell[cell != 0], return_counts=True)
            colors = tuple(int(v) for v in vals[np.argsort(-counts, kind="stable")])
            out.append(Obj(cell.copy(), r * bh, c * bw, int(np.count_nonzero(cell)), colors))
    return tuple(out)


@primitive("G", "O", weight=0.3)
def split_squares(g: Grid) -> tuple[Obj, ...] | None:
    """A grid of k squares side by side (or stacked), as k objects."""
    h, w = g.shape
    if h > w and h % w == 0:
        return _blocks(g, h // w, 1)
    if w > h and w % h == 0:
        return _blocks(g, 1, w // h)
    return None


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
