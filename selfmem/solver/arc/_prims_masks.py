"""Two grids and divided grids: splits into two halves (``G -> P``) and cell-wise logic on them
(and, or, xor, overlay), the parts of a grid divided by lines overlaid, masked by a key or filled, and
one value per cell of a divided grid.

Each function is marked with :func:`~._primitives.primitive`; :mod:`._registry` folds variants into
primitives with options and fixes the order.
"""

from __future__ import annotations

from math import gcd

import numpy as np

from ._grid import MAX_SIDE, Grid, objects
from ._primitives import primitive
from ._prims_base import _blocks, _colours, _lines, _majority


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


@primitive("P", "G", weight=0.5)
def p_overlay(p: tuple[Grid, Grid]) -> Grid:
    return np.where(p[0] != 0, p[0], p[1]).astype(np.int8)


@primitive(weight=0.3)
def cells_row(g: Grid) -> Grid | None:
    """Every coloured cell, in reading order, as one row."""
    cells = g[g != 0]
    return np.array([cells], np.int8) if 0 < len(cells) <= MAX_SIDE else None


@primitive("G", "P", weight=0.3)
def split_long(g: Grid) -> tuple[Grid, Grid] | None:
    """The two halves across the longer side (left and right of a wide grid, top and bottom of a tall one)."""
    h, w = g.shape
    return split_lr(g) if w > h else split_tb(g) if h > w else None


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


@primitive(weight=0.3)
def cells_fill(g: Grid) -> Grid | None:
    """In a grid divided by full lines, every block filled with its most common colour (not the lines')."""
    rows = [i for i in range(g.shape[0]) if g[i, 0] != 0 and (g[i] == g[i, 0]).all()]
    cols = [j for j in range(g.shape[1]) if g[0, j] != 0 and (g[:, j] == g[0, j]).all()]
    if not rows and not cols:
        return None
    line = {int(g[r, 0]) for r in rows} | {int(g[0, c]) for c in cols}
    out = g.copy()
    rb, cb = [-1] + rows + [g.shape[0]], [-1] + cols + [g.shape[1]]
    changed = False
    for r0, r1 in zip(rb, rb[1:]):
        for c0, c1 in zip(cb, cb[1:]):
            block = g[r0 + 1:r1, c0 + 1:c1]
            v = block[(block != 0) & ~np.isin(block, list(line))]
            if block.size and len(v):
                out[r0 + 1:r1, c0 + 1:c1] = _majority(v)
                changed = True
    return out if changed else None


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
