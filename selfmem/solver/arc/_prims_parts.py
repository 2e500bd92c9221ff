"""Primitives from the training tasks whose output has another shape than the input (third round).

Picks among objects (the one with most cells of a colour, the odd one out, the most common one, the least
symmetric one), single-colour 8-connected and multicolour 4-connected objects, the object holding a
marker cell, the cells of a grid divided by lines of any colour (background too) and their overlay, a
mask coloured by a key, the largest shape shrunk and filled from the rest, a grid copied into the cells
of one colour, an outlined rectangle, the region inside four corner marks, two colours exchanged.
With low weights.
"""

from __future__ import annotations

from math import gcd

import numpy as np
from scipy import ndimage

from ._grid import MAX_SIDE, Grid, Obj, objects
from ._prims_objects import _pick
from ._primitives import fits, primitive


def _colours(cell: Grid) -> tuple[int, ...]:
    vals, counts = np.unique(cell[cell != 0], return_counts=True)
    return tuple(int(v) for v in vals[np.argsort(-counts, kind="stable")])


def _content(o: Obj) -> bytes:
    return o.grid.tobytes() + bytes(o.grid.shape)


# -- objects and picks ------------------------------------------------------------------
@primitive("G", "O", weight=0.4)
def objs_diag(g: Grid) -> tuple[Obj, ...] | None:
    """Single-colour 8-connected objects."""
    return objects(g, diagonal=True) or None


@primitive("G", "O", weight=0.3)
def objs_multi4(g: Grid) -> tuple[Obj, ...] | None:
    """Multicolour 4-connected objects."""
    return objects(g, multicolor=True) or None


@primitive("O", "G", weight=0.4, colour=True)
def obj_most_color(objs: tuple[Obj, ...], c: int) -> Grid | None:
    """The object with the most cells of colour ``c``."""
    return _pick(objs, lambda o: int((o.grid == c).sum()))


@primitive("O", "G", weight=0.4)
def obj_unique(objs: tuple[Obj, ...]) -> Grid | None:
    """The one object whose content (shape and colours) no other object has."""
    if len(objs) < 3:
        return None
    keys = [_content(o) for o in objs]
    lone = [o for o, k in zip(objs, keys) if keys.count(k) == 1]
    return lone[0].grid if len(lone) == 1 else None


@primitive("O", "G", weight=0.3)
def obj_most_common(objs: tuple[Obj, ...]) -> Grid | None:
    """The object whose content (shape and colours) occurs most often."""
    if len(objs) < 3:
        return None
    keys = [_content(o) for o in objs]
    counts = {k: keys.count(k) for k in keys}
    best = max(counts.values())
    top = [k for k, v in counts.items() if v == best]
    return objs[keys.index(top[0])].grid if best >= 2 and len(top) == 1 else None


def _symmetries(a: Grid) -> int:
    n = int(np.array_equal(a, a[:, ::-1])) + int(np.array_equal(a, a[::-1])) + int(np.array_equal(a, a[::-1, ::-1]))
    if a.shape[0] == a.shape[1]:
        n += int(np.array_equal(a, a.T)) + int(np.array_equal(a, a[::-1, ::-1].T))
    return n


@primitive("O", "G", weight=0.3)
def obj_least_symmetric(objs: tuple[Obj, ...]) -> Grid | None:
    """The object with the fewest symmetries (mirrors, half turn, both diagonals)."""
    return _pick(objs, lambda o: -_symmetries(o.grid))


@primitive(weight=0.3)
def obj_marked(g: Grid) -> Grid | None:
    """The 8-connected object holding the grid's one single-cell colour (a marker), cropped without the
    marker; a marker inside the object's box takes the object's main colour."""
    vals, counts = np.unique(g[g != 0], return_counts=True)
    singles = [int(v) for v, n in zip(vals, counts) if n == 1]
    if len(singles) != 1:
        return None
    marker = singles[0]
    (my,), (mx,) = np.nonzero(g == marker)
    labels, _ = ndimage.label(g != 0, structure=np.ones((3, 3)))
    rest = (labels == labels[my, mx]) & (g != marker)
    if not rest.any():
        return None
    ys, xs = np.nonzero(rest)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    box = np.where(rest[y0:y1, x0:x1], g[y0:y1, x0:x1], 0).astype(np.int8)
    if y0 <= my < y1 and x0 <= mx < x1:
        box[my - y0, mx - x0] = _colours(box)[0]
    return box


# -- grids divided by lines ---------------------------------------------------------------
def _lines(g: Grid) -> tuple[int, list[int], list[int]] | None:
    """The colour (background included) with the most full rows and columns of itself, and those lines."""
    best: tuple[tuple[int, int], int, list[int], list[int]] | None = None
    for c in np.unique(g).tolist():
        rows = np.flatnonzero((g == c).all(axis=1)).tolist()
        cols = np.flatnonzero((g == c).all(axis=0)).tolist()
        if not (rows or cols) or len(rows) == g.shape[0] or len(cols) == g.shape[1]:
            continue
        score = (len(rows) + len(cols), int(c != 0))
        if best is None or score > best[0]:
            best = (score, c, rows, cols)
    return None if best is None else best[1:]


def _blocks(g: Grid) -> list[list[tuple[int, int, Grid]]] | None:
    """The cells between the dividing lines, row by row: (top, left, cell)."""
    found = _lines(g)
    if found is None:
        return None
    _, rows, cols = found
    rb, cb = [-1] + rows + [g.shape[0]], [-1] + cols + [g.shape[1]]
    out = []
    for r0, r1 in zip(rb, rb[1:]):
        row = [(r0 + 1, c0 + 1, g[r0 + 1:r1, c0 + 1:c1]) for c0, c1 in zip(cb, cb[1:]) if c1 - c0 > 1]
        if r1 - r0 > 1 and row:
            out.append(row)
    return out if sum(len(r) for r in out) >= 2 else None


@primitive("G", "O", weight=0.4)
def cells_any(g: Grid) -> tuple[Obj, ...] | None:
    """The cells of a grid divided by full lines of one colour, background lines too."""
    blocks = _blocks(g)
    if blocks is None:
        return None
    return tuple(Obj(cell.copy(), t, left, int(np.count_nonzero(cell)), _colours(cell))
                 for row in blocks for t, left, cell in row)


@primitive(weight=0.4)
def overlay_parts(g: Grid) -> Grid | None:
    """A grid divided into k >= 2 equal parts by lines of one colour, the parts overlaid, earlier on top."""
    found = _lines(g)
    if found is None:
        return None
    _, rows, cols = found
    if rows and cols:
        return None
    arr, lines, turned = (g, cols, False) if cols else (g.T, rows, True)
    b = [-1] + lines + [arr.shape[1]]
    parts = [arr[:, a + 1:z] for a, z in zip(b, b[1:]) if z - a > 1]
    if len(parts) < 2 or len({p.shape for p in parts}) != 1:
        return None
    out = np.zeros_like(parts[0])
    for p in reversed(parts):
        out = np.where(p != 0, p, out)
    return (out.T if turned else out).astype(np.int8)


@primitive(weight=0.3)
def mask_by_key(g: Grid) -> Grid | None:
    """A grid divided by lines into a one-colour mask (its largest part) and a small key of colours (the
    other parts): the mask coloured by the key stretched over it."""
    found = _lines(g)
    if found is None or found[0] == 0:
        return None
    _, rows, cols = found
    rb, cb = [-1] + rows + [g.shape[0]], [-1] + cols + [g.shape[1]]
    parts = [(g[r0 + 1:r1, c0 + 1:c1], i, j) for i, (r0, r1) in enumerate(zip(rb, rb[1:]))
             for j, (c0, c1) in enumerate(zip(cb, cb[1:])) if r1 - r0 > 1 and c1 - c0 > 1 and g[r0 + 1:r1, c0 + 1:c1].any()]
    if len(parts) < 2:
        return None
    parts.sort(key=lambda p: -p[0].size)
    mask = parts[0][0]
    if parts[0][0].size == parts[1][0].size or len(_colours(mask)) != 1:
        return None
    rest = parts[1:]
    if len(rest) == 1:
        key = rest[0][0]
    elif all(p[0].size == 1 for p in rest):
        ii, jj = sorted({p[1] for p in rest}), sorted({p[2] for p in rest})
        key = np.zeros((len(ii), len(jj)), np.int8)
        for cell, i, j in rest:
            key[ii.index(i), jj.index(j)] = cell[0, 0]
    else:
        return None
    (mh, mw), (kh, kw) = mask.shape, key.shape
    if mh % kh or mw % kw:
        return None
    return np.where(mask != 0, np.kron(key, np.ones((mh // kh, mw // kw), np.int8)), 0).astype(np.int8)


# -- shapes shrunk, copied, cropped ---------------------------------------------------------
def _shrink(g: Grid) -> Grid | None:
    """A grid drawn in k x k blocks (k >= 2: the gcd of its run lengths), one cell per block."""
    k = 0
    for a in (g, g.T):
        for row in a:
            edges = np.flatnonzero(np.diff(row)) + 1
            for n in np.diff(np.concatenate([[0], edges, [len(row)]])):
                k = gcd(k, int(n))
    return g[::k, ::k].copy() if k >= 2 else None


@primitive(weight=0.3)
def shape_fill_rest(g: Grid) -> Grid | None:
    """The largest one-colour shape, shrunk to one cell per block, filled from the rest of the grid: with
    the rest's one colour, or cell by cell from the one other shape of that size."""
    objs = objects(g, diagonal=True)
    sizes = [o.size for o in objs]
    if len(objs) < 2 or sizes.count(max(sizes)) != 1:
        return None
    big = objs[sizes.index(max(sizes))]
    m = _shrink(big.grid)
    if m is None:
        return None
    rest = g.copy()
    h, w = big.grid.shape
    rest[big.top:big.top + h, big.left:big.left + w][big.grid != 0] = 0
    cols = np.unique(rest[rest != 0])
    if len(cols) == 1:
        return np.where(m != 0, cols[0], 0).astype(np.int8)
    parts = [o for o in objects(rest, diagonal=True, multicolor=True) if o.grid.shape == m.shape]
    return np.where(m != 0, parts[0].grid, 0).astype(np.int8) if len(parts) == 1 else None


@primitive(weight=0.3, colour=True)
def kron_color(g: Grid, c: int) -> Grid | None:
    """A copy of the grid in every block where the grid has colour ``c`` (the rest blank)."""
    if c == 0 or not (g == c).any() or (g == c).all() or g.size * g.size > MAX_SIDE * MAX_SIDE:
        return None
    return fits(np.kron((g == c).astype(np.int8), g).astype(np.int8))


@primitive(weight=0.3)
def crop_outline(g: Grid) -> Grid | None:
    """The largest rectangle outlined in one colour, cropped with its outline."""
    best: tuple[int, Grid] | None = None
    for c in np.unique(g[g != 0]).tolist():
        labels, _ = ndimage.label(g == c)
        for i, sl in enumerate(ndimage.find_objects(labels), 1):
            box = labels[sl] == i
            if min(box.shape) < 3 or not (box[0].all() and box[-1].all() and box[:, 0].all() and box[:, -1].all()):
                continue
            if best is None or box.size > best[0]:
                best = (box.size, g[sl].copy())
    return None if best is None or best[1].shape == g.shape else best[1]


@primitive(weight=0.2)
def crop_corners(g: Grid) -> Grid | None:
    """The region inside four corner marks of one colour, its content painted the marks' colour."""
    for c in np.unique(g[g != 0]).tolist():
        ys, xs = np.nonzero(g == c)
        if len(ys) != 4 or len(set(ys.tolist())) != 2 or len(set(xs.tolist())) != 2:
            continue
        y0, y1, x0, x1 = ys.min(), ys.max(), xs.min(), xs.max()
        if y1 - y0 >= 2 and x1 - x0 >= 2:
            inner = g[y0 + 1:y1, x0 + 1:x1]
            return np.where(inner != 0, c, 0).astype(np.int8)
    return None


@primitive(weight=0.3)
def swap_colors(g: Grid) -> Grid | None:
    """The grid's two non-background colours exchanged."""
    v = np.unique(g[g != 0])
    if len(v) != 2:
        return None
    a, b = v
    return np.where(g == a, b, np.where(g == b, a, g)).astype(np.int8)
