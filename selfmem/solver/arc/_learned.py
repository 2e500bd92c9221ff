"""Steps learned from a task's train pairs: a colour map and local rules (lookup tables over cell features).

A rule maps a feature of each cell of a grid to the colour of the same cell in the output: ``patch3``
its 3x3 neighbourhood, ``cross`` the cell and its 4 neighbours, ``mask3`` the cell's colour and which
of its 8 neighbours are not background, ``count8`` the cell's colour and how many are, ``rowcol`` the
cell's colour with the sets of colours in its row and its column; ``objsize``, ``objrank``, ``objborder`` and
``objholes`` a property of the object the cell is in (whole objects recoloured by size, size rank, touching
the border, holes). A rule is fitted when every feature seen in the train pairs
has one output colour, and applies to a test grid only when all its features were seen.

``stamp`` is a rule of another form: every cell of a colour paints the same pattern on the background
around it (up to 2 cells away) and may change its own colour; the pattern of each colour is read from the
train pairs (offsets whose observations disagree are left out), and the rule fits when painting every
train input gives its output exactly. Unlike a lookup table it applies to any arrangement of cells.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._grid import CROSS, Grid, by_grid
from ._relational import RELATIONAL, apply_relational, fit_relational

__all__ = ["fit_colormap", "apply_colormap", "RULES", "fit_rule", "apply_rule"]

OUTSIDE = 10


def fit_colormap(preds: Sequence[Grid], targets: Sequence[Grid]) -> tuple[tuple[int, int], ...] | None:
    """The cell-wise colour map turning every prediction into its target, or ``None`` (not the identity)."""
    mapping: dict[int, int] = {}
    for p, t in zip(preds, targets):
        if p.shape != t.shape:
            return None
        codes = p.astype(np.int16) * 10 + t
        pairs = np.unique(codes) if codes.size and codes.min() < 0 else np.flatnonzero(np.bincount(codes.ravel()))
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


@by_grid(1024)
def _object_cells(g: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per cell, of the single-colour 8-connected object holding it (0 for the background): its size, the
    dense rank of that size among the grid's objects (1 = largest), whether it touches the border, and its
    number of holes (regions its colour encloses, 4-connected). Shape (h, w) each, read-only. Two calls to
    ``ndimage.label`` and one hole fill per colour, not per object (this runs on every grid the rules see)."""
    from scipy import ndimage

    labels = np.zeros(g.shape, np.int64)
    nholes = [0]
    n = 0
    eight = np.ones((3, 3), bool)
    for c in np.unique(g[g != 0]):
        mask = g == c
        lab, k = ndimage.label(mask, structure=eight)
        labels[mask] = lab[mask] + n
        count = np.zeros(k + 1, np.int64)
        inside = ndimage.binary_fill_holes(mask, CROSS) & ~mask
        if inside.any():
            regions, r = ndimage.label(inside, CROSS)
            # each enclosed region belongs to the object next to its first cell (above or to its left)
            first = ndimage.find_objects(regions)
            for i, sl in enumerate(first, 1):
                y0 = sl[0].start
                x0 = int(np.flatnonzero(regions[y0] == i)[0])
                owner = lab[y0 - 1, x0] if y0 > 0 and lab[y0 - 1, x0] else lab[y0, x0 - 1] if x0 > 0 else 0
                count[owner] += 1
        nholes.extend(count[1:].tolist())
        n += k
    size = np.zeros(g.shape, np.int64)
    rank, border, holes = size.copy(), size.copy(), size.copy()
    if n:
        sizes = np.bincount(labels.ravel(), minlength=n + 1)
        order = np.unique(sizes[1:])[::-1]
        ranks = np.zeros(n + 1, np.int64)
        ranks[1:] = np.searchsorted(-order, -sizes[1:]) + 1
        edge = np.zeros(n + 1, np.int64)
        edge[np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))] = 1
        sizes[0] = ranks[0] = edge[0] = 0
        size, rank, border, holes = sizes[labels], ranks[labels], edge[labels], np.asarray(nholes)[labels]
    for a in (size, rank, border, holes):
        a.setflags(write=False)
    return size, rank, border, holes


def _objsize(g: Grid) -> np.ndarray:
    return np.where(g == 0, -1, _object_cells(g)[0]).ravel()


def _objrank(g: Grid) -> np.ndarray:
    return np.where(g == 0, -1, _object_cells(g)[1]).ravel()


def _objborder(g: Grid) -> np.ndarray:
    return (g.astype(np.int64) * 2 + _object_cells(g)[2]).ravel()


def _objholes(g: Grid) -> np.ndarray:
    return np.where(g == 0, -1, np.minimum(_object_cells(g)[3], 15)).ravel()


RULES = {"cross": _cross, "mask3": _mask3, "count8": _count8, "patch3": _patch3, "rowcol": _rowcol, "stamp": None,
         "objsize": _objsize, "objrank": _objrank, "objborder": _objborder, "objholes": _objholes,
         "window": None, **{kind: None for kind in RELATIONAL}}
"""Rule kinds: the cell feature of a lookup-table rule, or ``None`` for the stamp rule and the relational
rules (:mod:`._relational`: ``lines``, ``enclosed``) and the window (a fixed crop, :func:`fit_window`). The ``obj*`` rules
recolour whole objects (single-colour, 8-connected) by a property of the object: its size, its size's rank
(1 = largest), whether it touches the border (with its colour), its number of holes; the background maps to
one colour."""

_OBJECT_RULES = frozenset({"objsize", "objrank", "objborder", "objholes"})

NORMALISED = ("patch3", "rowcol")
"""Lookup-table rules also fitted on colour-normalised grids (kinds ``npatch3``, ...): each grid's colours
renamed by how often they occur (most frequent first, ties by colour), the output's colours by the same
names (a colour its input lacks stays itself), so one table serves pairs that use different colours. Chosen on training: ``npatch3`` served 3 tasks,
``nrowcol`` 1 that nothing else solves; ``ncross``, ``nmask3`` and ``ncount8`` served none and went."""

RULES.update({f"n{kind}": None for kind in NORMALISED})


def _ranks(g: Grid) -> np.ndarray:
    """The name of each colour of ``g`` by frequency rank (0 = most frequent), -1 for absent colours, shape (10,)."""
    counts = np.bincount(g.ravel(), minlength=10)
    present = np.flatnonzero(counts)
    order = present[np.lexsort((present, -counts[present]))]
    names = np.full(10, -1, np.int64)
    names[order] = np.arange(len(order))
    return names


def _fit_normalised(kind: str, preds: Sequence[Grid], targets: Sequence[Grid]) -> tuple[np.ndarray, np.ndarray] | None:
    feature = RULES[kind]
    assert feature is not None
    keys, vals = [], []
    for p, t in zip(preds, targets):
        names = _ranks(p)
        keys.append(feature(names[p].astype(np.int8)))
        out = names[t]
        vals.append(np.where(out >= 0, out, 10 + t.astype(np.int64)).ravel())  # 10 + c: colour c, absolute
    uniq, inv = np.unique(np.concatenate(keys), return_inverse=True)
    values = np.concatenate(vals)
    same, lo = _agreeing(inv, values, len(uniq))
    if not same.all():
        return None
    return uniq, lo


def _apply_normalised(kind: str, table: tuple[np.ndarray, np.ndarray], g: Grid) -> Grid | None:
    feature = RULES[kind]
    assert feature is not None
    names = _ranks(g)
    colour_of = np.full(20, -1, np.int64)
    colour_of[names[names >= 0]] = np.flatnonzero(names >= 0)
    colour_of[10:] = np.arange(10)
    uniq, codes = table
    keys = feature(names[g].astype(np.int8))
    pos = np.minimum(np.searchsorted(uniq, keys), len(uniq) - 1)
    if (uniq[pos] != keys).any():
        return None
    out = colour_of[codes[pos]]
    if (out < 0).any():  # a rank this grid has no colour for
        return None
    return out.reshape(g.shape).astype(np.int8)

STAMP_RADIUS = 2
_SPAN = 2 * STAMP_RADIUS + 1


_OFFSETS = np.array([(dy, dx) for dy in range(-STAMP_RADIUS, STAMP_RADIUS + 1)
                     for dx in range(-STAMP_RADIUS, STAMP_RADIUS + 1)], dtype=np.int64)
_CENTRE = (_OFFSETS[:, 0] == 0) & (_OFFSETS[:, 1] == 0)  # which offset is the coloured cell itself
_OFFSET_KEYS = (_OFFSETS[:, 0] + STAMP_RADIUS) * _SPAN + _OFFSETS[:, 1] + STAMP_RADIUS


def _stamp_observations(p: Grid, t: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Keys ``colour * span^2 + offset`` and target colours: every background cell near a coloured cell
    (and every coloured cell itself, offset 0). All offsets at once (the order of the pairs does not matter)."""
    h, w = p.shape
    ys, xs = np.nonzero(p)
    y = ys[None, :] + _OFFSETS[:, :1]  # (offsets, cells)
    x = xs[None, :] + _OFFSETS[:, 1:]
    ok = (y >= 0) & (y < h) & (x >= 0) & (x < w)
    yc, xc = np.where(ok, y, 0), np.where(ok, x, 0)
    ok &= _CENTRE[:, None] | (p[yc, xc] == 0)
    keys = p[ys, xs].astype(np.int64)[None, :] * _SPAN * _SPAN + _OFFSET_KEYS[:, None]
    return keys[ok], t[yc[ok], xc[ok]].astype(np.int64)


def _agreeing(inv: np.ndarray, vals: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """For ``n`` groups (``inv``: each value's group): whether all values of a group are equal, and the value
    of each group where they are. One write and one read per value (no minimum/maximum ``ufunc.at``)."""
    some = np.zeros(n, vals.dtype)
    some[inv] = vals
    same = np.ones(n, bool)
    same[inv[some[inv] != vals]] = False
    return same, some


def _paint(g: Grid, table: tuple[np.ndarray, np.ndarray]) -> Grid:
    keys, colours = table
    out = g.copy()
    h, w = g.shape
    centre = STAMP_RADIUS * _SPAN + STAMP_RADIUS
    for key, colour in zip(keys.tolist(), colours.tolist()):
        c, off = divmod(key, _SPAN * _SPAN)
        dy, dx = divmod(off, _SPAN)
        dy, dx = dy - STAMP_RADIUS, dx - STAMP_RADIUS
        ys, xs = np.nonzero(g == c)
        y, x = ys + dy, xs + dx
        ok = (y >= 0) & (y < h) & (x >= 0) & (x < w)
        y, x = y[ok], x[ok]
        if off != centre:
            keep = g[y, x] == 0
            y, x = y[keep], x[keep]
        out[y, x] = colour
    return out


def _fit_stamp(preds: Sequence[Grid], targets: Sequence[Grid]) -> tuple[np.ndarray, np.ndarray] | None:
    if any((t != 0).all() for t in targets):  # a pattern is painted on a background that stays in sight
        return None
    obs = [_stamp_observations(p, t) for p, t in zip(preds, targets)]
    keys = np.concatenate([k for k, _ in obs])
    vals = np.concatenate([v for _, v in obs])
    if not len(keys):
        return None
    uniq, inv = np.unique(keys, return_inverse=True)
    same, lo = _agreeing(inv, vals, len(uniq))
    centre = uniq % (_SPAN * _SPAN) == STAMP_RADIUS * _SPAN + STAMP_RADIUS
    colour = uniq // (_SPAN * _SPAN)
    paints = same & np.where(centre, lo != colour, lo != 0)
    if not paints.any():
        return None
    table = (uniq[paints], lo[paints].astype(np.int8))
    if all(np.array_equal(_paint(p, table), t) for p, t in zip(preds, targets)):
        return table
    return None


_CORNERS = ((0, 0), (0, 1), (1, 0), (1, 1))  # (from the bottom, from the right) of top-left, top-right, ...


def fit_window(preds: Sequence[Grid], targets: Sequence[Grid]) -> tuple[np.ndarray, np.ndarray] | None:
    """A fixed crop: every target is the window of one shape at one offset from one corner of its grid.

    The table is ``([corner, dy, dx, h, w], [])``: the first corner (top-left, top-right, bottom-left,
    bottom-right) and smallest offset that fit every pair. ``None`` when the targets differ in shape, are no
    smaller than their grids, or no window fits them all.

    >>> g = np.arange(9, dtype=np.int8).reshape(3, 3)
    >>> t = fit_window([g], [g[1:, 2:]])
    >>> apply_window(t, np.arange(16, dtype=np.int8).reshape(4, 4)).tolist()
    [[6], [10]]
    """
    shapes = {t.shape for t in targets}
    if len(shapes) != 1 or not preds:
        return None
    h, w = shapes.pop()
    if any(p.shape[0] < h or p.shape[1] < w or p.shape == (h, w) for p in preds):
        return None
    hits = []
    for p, t in zip(preds, targets):
        at = np.argwhere((sliding_window_view(p, (h, w)) == t).all(axis=(2, 3)))
        if not len(at):  # a target found nowhere in its grid: no window fits (checked pair by pair)
            return None
        hits.append(at)
    for corner, (bottom, right) in enumerate(_CORNERS):
        common: set[tuple[int, int]] | None = None
        for p, at in zip(preds, hits):
            ys = p.shape[0] - h - at[:, 0] if bottom else at[:, 0]
            xs = p.shape[1] - w - at[:, 1] if right else at[:, 1]
            found = set(zip(ys.tolist(), xs.tolist()))
            common = found if common is None else common & found
            if not common:
                break
        if common:
            dy, dx = min(common)
            return np.array([corner, dy, dx, h, w], np.int64), np.zeros(0, np.int8)
    return None


def apply_window(table: tuple[np.ndarray, np.ndarray], g: Grid) -> Grid | None:
    """The window of :func:`fit_window` on ``g`` (``None`` when ``g`` is too small for it)."""
    corner, dy, dx, h, w = table[0].tolist()
    bottom, right = _CORNERS[corner]
    y = g.shape[0] - h - dy if bottom else dy
    x = g.shape[1] - w - dx if right else dx
    if y < 0 or x < 0 or y + h > g.shape[0] or x + w > g.shape[1]:
        return None
    return g[y:y + h, x:x + w].copy()


def fit_rule(kind: str, preds: Sequence[Grid], targets: Sequence[Grid]) -> tuple[np.ndarray, np.ndarray] | None:
    """The table ``(keys, colours)`` of rule ``kind`` mapping every prediction to its target, or ``None``.

    >>> g = np.array([[0, 1, 0]], np.int8)
    >>> fit_rule("cross", [g], [np.array([[2, 1, 2]], np.int8)]) is not None
    True
    """
    if kind == "window":
        return fit_window(preds, targets)
    if any(p.shape != t.shape for p, t in zip(preds, targets)):
        return None
    if kind == "stamp":
        return _fit_stamp(preds, targets)
    if kind in RELATIONAL:
        return fit_relational(kind, preds, targets)
    if kind[1:] in NORMALISED and kind[0] == "n":
        return _fit_normalised(kind[1:], preds, targets)
    feature = RULES[kind]
    assert feature is not None
    if kind in _OBJECT_RULES:  # the background is one key: it must become one colour (checked before the objects)
        bg = np.concatenate([t[p == 0] for p, t in zip(preds, targets)])
        if bg.size and (bg != bg[0]).any():
            return None
    first = feature(preds[0])
    if len(preds) > 1 and not _agree(first, targets[0].ravel().astype(np.int64)):
        return None  # the first pair alone contradicts the rule (most fits end here, at a fraction of the cost)
    keys = np.concatenate([first] + [feature(p) for p in preds[1:]])
    vals = np.concatenate([t.ravel() for t in targets]).astype(np.int64)
    uniq, inv = np.unique(keys, return_inverse=True)
    same, lo = _agreeing(inv, vals, len(uniq))
    if not same.all():
        return None
    return uniq, lo.astype(np.int8)


def _agree(keys: np.ndarray, vals: np.ndarray) -> bool:
    """Whether cells with equal keys have equal values."""
    uniq, inv = np.unique(keys, return_inverse=True)
    return bool(_agreeing(inv, vals, len(uniq))[0].all())


def apply_rule(kind: str, table: tuple[np.ndarray, np.ndarray], g: Grid) -> Grid | None:
    """Rule ``kind`` on grid ``g``; ``None`` when a cell's feature was never seen in the train pairs."""
    if kind == "stamp":
        return _paint(g, table)
    if kind == "window":
        return apply_window(table, g)
    if kind in RELATIONAL:
        return apply_relational(kind, table, g)
    if kind[1:] in NORMALISED and kind[0] == "n":
        return _apply_normalised(kind[1:], table, g)
    feature = RULES[kind]
    assert feature is not None
    uniq, colours = table
    keys = feature(g)
    pos = np.searchsorted(uniq, keys)
    pos = np.minimum(pos, len(uniq) - 1)
    if (uniq[pos] != keys).any():
        return None
    return colours[pos].reshape(g.shape)
