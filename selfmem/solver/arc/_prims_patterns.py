"""Pattern primitives: continuing a pattern, periodic tiles, symmetry completion (also about a centre
mark), inpainting a hidden region from the grid's mirror lines, noise removal, diagonal patterns, solid
shapes kept, and a flag mirrored.

Each function is marked with :func:`~._primitives.primitive`; :mod:`._registry` folds variants into
primitives with options and fixes the order.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import numpy as np
from scipy import ndimage

from ._grid import CROSS, MAX_SIDE, Grid, by_grid, objects
from ._primitives import primitive
from ._prims_base import _STEPS4, _majority, _shift_rows


def _complete(g: Grid, mirrored: Grid) -> Grid | None:
    if mirrored.shape != g.shape:
        return None
    return np.where(g == 0, mirrored, g).astype(np.int8)


@primitive(weight=0.6)
def sym_h(g: Grid) -> Grid | None:
    return _complete(g, g[:, ::-1])


@primitive(weight=0.6)
def sym_v(g: Grid) -> Grid | None:
    return _complete(g, g[::-1, :])


@primitive(weight=0.5)
def sym_rot(g: Grid) -> Grid | None:
    return _complete(g, np.rot90(g, 2))


@primitive(weight=0.8)
def sym_all(g: Grid) -> Grid | None:
    """Fill 0 cells from every mirror image (left-right, up-down, 180 degrees, and the diagonal if square)."""
    out = g
    for _ in range(2):
        for m in (out[:, ::-1], out[::-1, :], np.rot90(out, 2)) + ((out.T,) if g.shape[0] == g.shape[1] else ()):
            out = np.where(out == 0, m, out).astype(np.int8)
    return out


def _line_periods(g: Grid) -> np.ndarray:
    """Which periods ``p`` (index 0 to w) no row of ``g`` contradicts: no two non-zero cells of one row at a
    multiple of ``p`` apart differ, shape (w + 1,) bool. A 2-D period needs both of its sides to pass, so
    :func:`continue_pattern` tries only those (the same answer, without checking each failing tile)."""
    w = g.shape[1]
    nz = g != 0
    differ = (nz[:, :, None] & nz[:, None, :] & (g[:, :, None] != g[:, None, :])).any(axis=0)  # (w, w)
    i, j = np.nonzero(np.triu(differ, 1))
    apart = np.zeros(w + 1, bool)
    apart[j - i] = True
    ok = np.ones(w + 1, bool)
    for p in range(1, w):
        ok[p] = not apart[p::p].any()
    return ok


@primitive(weight=0.8)
def continue_pattern(g: Grid) -> Grid | None:
    """Fill 0 cells by the smallest 2-D period that every non-zero cell agrees with."""
    h, w = g.shape
    ys, xs = np.nonzero(g)
    if len(ys) == 0 or len(ys) == g.size:
        return None
    vals = g[ys, xs].astype(np.int16)
    rows_ok, cols_ok = _line_periods(g), _line_periods(g.T)
    # every cell of the tile must be seen, so a tile has at most as many cells as g has non-zero ones; the
    # cells agree when each value equals the one written last at its place (no minimum/maximum per place)
    for area, py, px in sorted((py * px, py, px) for py in range(1, h + 1) if cols_ok[py]
                               for px in range(1, w + 1) if rows_ok[px]
                               if py * px < g.size and py * px <= len(ys) and (py < h or px < w)):
        idx = (ys % py) * px + (xs % px)
        seen = np.zeros(area, bool)
        seen[idx] = True
        if not seen.all():
            continue
        some = np.zeros(area, np.int16)
        some[idx] = vals
        if not (some[idx] == vals).all():
            continue
        tile = some.reshape(py, px).astype(np.int8)
        full = np.tile(tile, (h // py + 1, w // px + 1))[:h, :w]
        return full
    return None


def _minor(g: Grid) -> int | None:
    """The least frequent non-background colour, or ``None`` with fewer than two colours."""
    vals, counts = np.unique(g[g != 0], return_counts=True)
    return int(vals[np.argmin(counts)]) if len(vals) >= 2 else None


@primitive(weight=0.7)
def remove_noise(g: Grid) -> Grid | None:
    """Clear single cells that touch no cell of their colour (8 neighbours)."""
    out = g.copy()
    for o in objects(g, diagonal=True):
        if o.size == 1:
            out[o.top, o.left] = 0
    return None if np.array_equal(out, g) else out


@primitive(weight=0.6)
def period_tile(g: Grid) -> Grid | None:
    """The smallest tile that the whole grid repeats (cut at the edges)."""
    h, w = g.shape
    # g repeats its top-left (py, px) corner exactly when it repeats every py rows and every px columns, so
    # the periods of each axis are found apart (h + w comparisons, not a tiling per candidate box); the
    # smallest box wins, then the fewest rows
    rows = [py for py in range(1, h + 1) if np.array_equal(g[py:], g[:h - py])]
    cols = [px for px in range(1, w + 1) if np.array_equal(g[:, px:], g[:, :w - px])]
    best = min(((py * px, py, px) for py in rows for px in cols if py < h or px < w), default=None)
    return None if best is None else g[:best[1], :best[2]]


def _mask_colours(g: Grid) -> list[int]:
    """Colours that could hide cells, most likely first: those whose every component is a solid rectangle,
    then the other colours covering less than half the grid, then background."""
    solid: list[int] = []
    other: list[int] = []
    for c in np.unique(g).tolist():
        if c == 0 or (g == c).sum() >= g.size / 2:
            continue
        labels, _ = ndimage.label(g == c, CROSS)
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


@functools.lru_cache(maxsize=256)
def _mirror_stack(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_mirror_maps` stacked: which cells each map keeps inside, and the flat index each cell maps to,
    shape (maps, h * w) each, so that every map is checked against a grid at once."""
    maps = _mirror_maps(h, w)
    inside = np.stack([m[0].ravel() for m in maps]) if maps else np.zeros((0, h * w), bool)
    flat = np.stack([(m[1] * w + m[2]).ravel() for m in maps]) if maps else np.zeros((0, h * w), np.intp)
    inside.flags.writeable = flat.flags.writeable = False
    return inside, flat


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
    every = _mirror_maps(h, w)
    inside_all, flat_all = _mirror_stack(h, w)
    gf = g.ravel()
    for m in _mask_colours(g):
        hidden = g == m
        known = ~hidden
        kf = known.ravel()
        # the maps under which the known cells agree with their images (enough of them): all maps at once
        both = inside_all & kf[None, :] & kf[flat_all]
        agree = ~((gf[None, :] != gf[flat_all]) & both).any(axis=1)
        maps = [every[i] for i in np.flatnonzero(agree & (both.sum(axis=1) >= max(6, kf.sum() * 0.5)))]
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


@primitive(weight=0.3)
def sym_about_centre(g: Grid) -> Grid | None:
    """The grid mirrored left-right and up-down about the centre of the rarest colour whose own cells are
    symmetric both ways: a figure completed to four-fold symmetry around its centre mark."""
    if len(np.unique(g[g != 0])) < 2:
        return None
    centres = []
    for c in np.unique(g[g != 0]).tolist():
        ys, xs = np.nonzero(g == c)
        m = g[ys.min():ys.max() + 1, xs.min():xs.max() + 1] == c
        if (m == m[::-1]).all() and (m == m[:, ::-1]).all():
            centres.append((len(ys), int(ys.min() + ys.max()), int(xs.min() + xs.max())))
    centres.sort()
    if not centres or (len(centres) > 1 and centres[0][0] == centres[1][0]):
        return None
    _, cy2, cx2 = centres[0]
    h, w = g.shape
    out = g.copy()
    ys, xs = np.nonzero(g)
    cols = g[ys, xs]
    for my, mx in ((1, 0), (0, 1), (1, 1)):
        ty, tx = (cy2 - ys if my else ys), (cx2 - xs if mx else xs)
        if not ((ty >= 0) & (ty < h) & (tx >= 0) & (tx < w)).all():
            return None
        cur = out[ty, tx]
        if ((cur != 0) & (cur != cols)).any():
            return None
        out[ty, tx] = cols
    return out


@primitive(weight=0.3)
def keep_solid(g: Grid) -> Grid | None:
    """Only the cells lying in some one-colour 2x2 block: noise and thin strokes removed."""
    h, w = g.shape
    if h < 2 or w < 2:
        return None
    a = g[:-1, :-1]
    block = (a != 0) & (a == g[1:, :-1]) & (a == g[:-1, 1:]) & (a == g[1:, 1:])
    keep = np.zeros(g.shape, bool)
    for dy in (0, 1):
        for dx in (0, 1):
            keep[dy:dy + h - 1, dx:dx + w - 1] |= block
    return np.where(keep, g, 0).astype(np.int8) if keep.any() else None


@primitive(weight=0.3)
def denoise_stripes(g: Grid) -> Grid | None:
    """Every row (or every column, whichever changes fewer cells) made its most common colour."""
    rows = np.array([[_majority(r)] * g.shape[1] for r in g], np.int8)
    cols = np.array([[_majority(c)] * g.shape[0] for c in g.T], np.int8).T
    dr, dc = int((rows != g).sum()), int((cols != g).sum())
    return None if dr == dc else rows if dr < dc else cols


@primitive(weight=0.3)
def denoise_minor(g: Grid) -> Grid | None:
    """Cells of the rarest colour take the most common colour among their 4 neighbours (background too)."""
    minor = _minor(g)
    if minor is None:
        return None
    out = g.copy()
    h, w = g.shape
    todo = [(int(y), int(x)) for y, x in zip(*np.nonzero(g == minor))]
    for _ in range(3):  # cells inside a clump of noise wait for their neighbours
        rest = []
        for y, x in todo:
            near = [int(out[y + dy, x + dx]) for dy, dx in _STEPS4 if 0 <= y + dy < h and 0 <= x + dx < w]
            near = [v for v in near if v != minor]
            if not near:
                rest.append((y, x))
                continue
            vs, cs = np.unique(near, return_counts=True)
            top = vs[cs == cs.max()]
            out[y, x] = top[top != 0][0] if len(top) > 1 and (top != 0).any() else top[0]
        todo = rest
    out[out == minor] = 0
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
            moved = _shift_rows(top, s)
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
        out[y] = _shift_rows(out[y - p:y - p + 1], s)[0]
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
def flag_mirror(g: Grid) -> Grid | None:
    """A 1x1 grid: 1 when the grid equals its left-right mirror, else 0 (a colour map names the answer)."""
    return np.array([[int(np.array_equal(g, g[:, ::-1]))]], np.int8)
