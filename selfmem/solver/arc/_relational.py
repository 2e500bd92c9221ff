"""Relational rules: a cell's output colour chosen from its surroundings by colour-free features.

A lookup-table rule (:mod:`._learned`) keys each cell by colours, so a test grid that uses a colour the
train pairs did not (or puts it in a new place) is out of its table. A relational rule keys each cell by
relations that hold whatever the colours are, and reads its output from a *source* rather than storing
it: the cell's own colour, a fixed colour, or the colour of the first non-background cell in one of the
four directions (a ray's hit). Fitting keeps, for every key seen in the train pairs, the first source
that gives the right colour at every cell with that key (the own colour first, then the fixed colours,
then the rays); the rule fits when every key has one.

Two key sets (each chosen on the ARC training tasks, where they solve tasks no lookup table covers):

``lines``
    the cell's colour, whether the hits to its left and right are one colour, whether those above and
    below are (lines drawn between cells of a colour, gaps closed);
``enclosed``
    whether the cell is background, whether it is background closed off from the border (4-connected),
    and the two "between" relations of ``lines`` (regions filled, walls completed).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._grid import CROSS, Grid, by_grid

__all__ = ["RELATIONAL", "fit_relational", "apply_relational"]

_NONE = 10  # a ray that leaves the grid without a hit


def _hit_left(g: Grid) -> np.ndarray:
    """Per cell, the colour of the nearest non-background cell to its left (``_NONE`` if none), shape (h, w)."""
    h, w = g.shape
    idx = np.where(g != 0, np.arange(w)[None, :], -1)
    last = np.maximum.accumulate(idx, axis=1)
    prev = np.concatenate([np.full((h, 1), -1), last[:, :-1]], axis=1)
    rows = np.arange(h)[:, None]
    return np.where(prev >= 0, g[rows, np.maximum(prev, 0)], _NONE).astype(np.int64)


@by_grid(64)
def _hits(g: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The hits to the left, right, above and below every cell, shape (h, w) each (read-only: the last 64
    grids' are kept, as both relational kinds are fitted on the same grids)."""
    left = _hit_left(g)
    right = _hit_left(g[:, ::-1])[:, ::-1]
    up = _hit_left(g.T).T
    down = _hit_left(g[::-1].T).T[::-1]
    for a in (left, right, up, down):
        a.flags.writeable = False
    return left, right, up, down


def _between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return ((a == b) & (a != _NONE)).astype(np.int64)


def _enclosed(g: Grid) -> np.ndarray:
    from scipy import ndimage

    bg = g == 0
    lab, _ = ndimage.label(bg, CROSS)
    edge = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
    return (bg & ~np.isin(lab, edge[edge > 0])).astype(np.int64)


def _keys(kind: str, g: Grid, hits: tuple[np.ndarray, ...]) -> np.ndarray:
    left, right, up, down = hits
    if kind == "lines":
        parts = [g.astype(np.int64), _between(left, right), _between(up, down)]
    else:
        parts = [(g != 0).astype(np.int64), _enclosed(g), _between(left, right), _between(up, down)]
    key = np.zeros(g.shape, np.int64)
    for p in parts:
        key = key * 16 + p
    return key.ravel()


def _sources(g: Grid, hits: tuple[np.ndarray, ...]) -> np.ndarray:
    """The candidate output colours of every cell, shape (15, h * w): own colour, colours 0-9, 4 hits."""
    own = g.astype(np.int64).ravel()
    consts = np.repeat(np.arange(10, dtype=np.int64)[:, None], own.size, axis=1)
    return np.vstack([own[None, :], consts] + [h.ravel()[None, :] for h in hits])


RELATIONAL = ("lines", "enclosed")
"""The relational rule kinds (steps ``rule_lines``, ``rule_enclosed``)."""


def _right_sources(key: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The distinct keys and, per key, which sources are right at every cell of it, shape (15, keys); ``None``
    when some key has no such source. ``ok`` (15, cells): whether each source is right at each cell."""
    order = np.argsort(key, kind="stable")
    key, ok = key[order], ok[:, order]
    uniq, start = np.unique(key, return_index=True)
    every = np.logical_and.reduceat(ok, start, axis=1)
    return (uniq, every) if every.any(axis=0).all() else None


def fit_relational(kind: str, preds: Sequence[Grid], targets: Sequence[Grid]) -> tuple[np.ndarray, np.ndarray] | None:
    """The table ``(keys, source index)`` of relational rule ``kind``, or ``None`` when no source fits a key.

    >>> g = np.array([[3, 0, 0, 3]], np.int8)
    >>> t = fit_relational("lines", [g], [np.array([[3, 3, 3, 3]], np.int8)])
    >>> apply_relational("lines", t, np.array([[3, 0, 3]], np.int8)).tolist()
    [[3, 3, 3]]
    """
    if kind not in RELATIONAL:
        raise ValueError(f"relational rule kinds are {RELATIONAL}, got {kind!r}")
    if any(p.shape != t.shape for p, t in zip(preds, targets)):
        return None
    keys, good = [], []
    for i, (p, t) in enumerate(zip(preds, targets)):
        hits = _hits(p)
        keys.append(_keys(kind, p, hits))
        good.append(_sources(p, hits) == t.astype(np.int64).ravel()[None, :])
        if i == 0 and len(preds) > 1 and _right_sources(keys[0], good[0]) is None:
            return None  # the first pair alone has a key no source explains (most fits end here)
    found = _right_sources(np.concatenate(keys), np.concatenate(good, axis=1))
    if found is None:
        return None
    uniq, every = found
    source = np.argmax(every, axis=0)
    if (source == 0).all():  # the identity: nothing learned
        return None
    return uniq, source


def apply_relational(kind: str, table: tuple[np.ndarray, np.ndarray], g: Grid) -> Grid | None:
    """Relational rule ``kind`` on grid ``g``; ``None`` when a cell's key was never seen in the train pairs."""
    uniq, source = table
    hits = _hits(g)
    keys = _keys(kind, g, hits)
    pos = np.minimum(np.searchsorted(uniq, keys), len(uniq) - 1)
    if (uniq[pos] != keys).any():
        return None
    src = _sources(g, hits)
    out = src[source[pos], np.arange(keys.size)]
    if (out == _NONE).any():  # a ray that hit nothing here
        return None
    return out.reshape(g.shape).astype(np.int8)
