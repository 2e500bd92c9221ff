"""Helpers shared by the primitive modules: the 4-neighbourhood, shifts, block splits, colour lists, divider
lines, block majorities and object properties (holes, symmetry, shape). Nothing here is a primitive.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ._grid import Grid, Obj, colour_counts


def _colours(cell: Grid) -> tuple[int, ...]:
    """The non-zero colours of ``cell``, most frequent first (ties: the lower colour first)."""
    counts = colour_counts(cell)
    if counts is None:
        vals, counts = np.unique(cell[cell != 0], return_counts=True)
    else:
        counts[0] = 0
        vals = np.flatnonzero(counts)
        counts = counts[vals]
    return tuple(int(v) for v in vals[np.argsort(-counts, kind="stable")])


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


def _majority(a: np.ndarray) -> int:
    """The most frequent value of ``a`` (ties: the lowest)."""
    counts = colour_counts(a)
    if counts is None:
        vals, counts = np.unique(a, return_counts=True)
        return int(vals[np.argmax(counts)])
    return int(np.argmax(counts))


_FOUR = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool)
"""The 4-neighbourhood as a structuring element (``ndimage.label``)."""

_STEPS4 = ((1, 0), (-1, 0), (0, 1), (0, -1))
_STEPS8 = _STEPS4 + ((1, 1), (1, -1), (-1, 1), (-1, -1))
"""Offsets to the 4 and the 8 neighbours."""


def _shift(g: Grid, dy: int, dx: int) -> Grid | None:
    """``g`` moved by (dy, dx), background coming in; None for an empty grid."""
    if not g.any():
        return None
    out = np.zeros_like(g)
    h, w = g.shape
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = g[max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def _shift_rows(a: Grid, s: int) -> Grid:
    """Rows of ``a`` moved right by ``s`` cells (left when negative), background coming in."""
    out = np.zeros_like(a)
    w = a.shape[1]
    if s >= 0:
        out[:, s:] = a[:, :w - s]
    else:
        out[:, :w + s] = a[:, -s:]
    return out


def _holes(o: Obj) -> int:
    """Background regions the object encloses (4-connected)."""
    mask = o.grid != 0
    return int(ndimage.label(ndimage.binary_fill_holes(mask) & ~mask, _FOUR)[1])


def _symmetric(o: Obj) -> bool:
    """Whether the object equals its left-right or its up-down mirror image."""
    g = o.grid
    return bool(np.array_equal(g, g[:, ::-1]) or np.array_equal(g, g[::-1]))


def _shape_key(o: Obj) -> bytes:
    """The object's shape (which cells of its box it fills), as a hashable key."""
    return (o.grid != 0).tobytes() + bytes(o.grid.shape)
