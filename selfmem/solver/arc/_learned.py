"""Steps learned from a task's train pairs: a colour map and local rules (lookup tables over cell features).

A rule maps a feature of each cell of a grid to the colour of the same cell in the output: ``patch3``
its 3x3 neighbourhood, ``cross`` the cell and its 4 neighbours, ``mask3`` the cell's colour and which
of its 8 neighbours are not background, ``count8`` the cell's colour and how many are, ``rowcol`` the
cell's colour with the sets of colours in its row and its column. A rule is fitted when every feature seen in the train pairs
has one output colour, and applies to a test grid only when all its features were seen.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._grid import Grid

__all__ = ["fit_colormap", "apply_colormap", "RULES", "fit_rule", "apply_rule"]

OUTSIDE = 10


def fit_colormap(preds: Sequence[Grid], targets: Sequence[Grid]) -> tuple[tuple[int, int], ...] | None:
    """The cell-wise colour map turning every prediction into its target, or ``None`` (not the identity)."""
    mapping: dict[int, int] = {}
    for p, t in zip(preds, targets):
        if p.shape != t.shape:
            return None
        pairs = np.unique(p.astype(np.int16) * 10 + t, return_counts=False)
        for v in pairs:
            a, b = divmod(int(v), 10)
            if mapping.setdefault(a, b) != b:
                return None
    changed = tuple(sorted((a, b) for a, b in mapping.items() if a != b))
    return changed or None


def apply_colormap(g: Grid, pairs: tuple[tuple[int, int], ...]) -> Grid:
    lut = np.arange(10, dtype=np.int8)
    for a, b in pairs:
        lut[a] = b
    return lut[g]


def _patch3(g: Grid) -> np.ndarray:
    p = np.pad(g.astype(np.int64), 1, constant_values=OUTSIDE)
    h, w = g.shape
    key = np.zeros((h, w), np.int64)
    for dy in range(3):
        for dx in range(3):
            key = key * 11 + p[dy:dy + h, dx:dx + w]
    return key.ravel()


def _cross(g: Grid) -> np.ndarray:
    p = np.pad(g.astype(np.int64), 1, constant_values=OUTSIDE)
    h, w = g.shape
    key = p[1:-1, 1:-1].copy()
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        key = key * 11 + p[dy:dy + h, dx:dx + w]
    return key.ravel()


def _rowcol(g: Grid) -> np.ndarray:
    bits = (1 << g.astype(np.int64))
    rows = np.bitwise_or.reduce(bits, axis=1)[:, None]
    cols = np.bitwise_or.reduce(bits, axis=0)[None, :]
    return (g.astype(np.int64) * 2**20 + rows * 2**10 + cols).ravel()


def _mask3(g: Grid) -> np.ndarray:
    p = np.pad((g != 0).astype(np.int64), 1)
    h, w = g.shape
    key = g.astype(np.int64)
    for dy in range(3):
        for dx in range(3):
            if dy != 1 or dx != 1:
                key = key * 2 + p[dy:dy + h, dx:dx + w]
    return key.ravel()


def _count8(g: Grid) -> np.ndarray:
    p = np.pad((g != 0).astype(np.int64), 1)
    h, w = g.shape
    n = sum(p[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)) - (g != 0)
    return (g.astype(np.int64) * 16 + n).ravel()


RULES = {"cross": _cross, "mask3": _mask3, "count8": _count8, "patch3": _patch3, "rowcol": _rowcol}


def fit_rule(kind: str, preds: Sequence[Grid], targets: Sequence[Grid]) -> tuple[np.ndarray, np.ndarray] | None:
    """The table ``(keys, colours)`` of rule ``kind`` mapping every prediction to its target, or ``None``.

    >>> g = np.array([[0, 1, 0]], np.int8)
    >>> fit_rule("cross", [g], [np.array([[2, 1, 2]], np.int8)]) is not None
    True
    """
    if any(p.shape != t.shape for p, t in zip(preds, targets)):
        return None
    keys = np.concatenate([RULES[kind](p) for p in preds])
    vals = np.concatenate([t.ravel() for t in targets]).astype(np.int64)
    uniq, inv = np.unique(keys, return_inverse=True)
    lo = np.full(len(uniq), 99, np.int64)
    hi = np.full(len(uniq), -1, np.int64)
    np.minimum.at(lo, inv, vals)
    np.maximum.at(hi, inv, vals)
    if (lo != hi).any():
        return None
    return uniq, lo.astype(np.int8)


def apply_rule(kind: str, table: tuple[np.ndarray, np.ndarray], g: Grid) -> Grid | None:
    """Rule ``kind`` on grid ``g``; ``None`` when a cell's feature was never seen in the train pairs."""
    uniq, colours = table
    keys = RULES[kind](g)
    pos = np.searchsorted(uniq, keys)
    pos = np.minimum(pos, len(uniq) - 1)
    if (uniq[pos] != keys).any():
        return None
    return colours[pos].reshape(g.shape)
