"""Primitives from the training tasks whose output keeps the input's shape (third round).

Lone cells pulled to the shapes they point at, a multicolour template copied onto the one-colour marks
standing for it, shapes recoloured by the other colour on their lines, a figure completed to four-fold
symmetry about a centre mark, noise and thin strokes removed (only solid 2x2 blocks kept; rows or columns
made one colour; the rarest colour replaced by its neighbours), blocks of a divided grid filled, empty
rows and columns painted, 4-connected objects painted by their size, background swapped with the most
common colour. With low weights.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ._grid import Grid
from ._prims_grid import _minor
from ._primitives import primitive

_FOUR = ((1, 0), (-1, 0), (0, 1), (0, -1))
_EIGHT = _FOUR + ((1, 1), (1, -1), (-1, 1), (-1, -1))


# -- cells pulled to shapes ----------------------------------------------------------------------
def _lone(g: Grid) -> np.ndarray:
    """Coloured cells with no coloured 8-neighbour."""
    p = np.pad(g != 0, 1)
    h, w = g.shape
    n = sum(p[1 + dy:1 + dy + h, 1 + dx:1 + dx + w].astype(np.int8) for dy, dx in _EIGHT)
    return (g != 0) & (n == 0)


def _pull(g: Grid, same_colour: bool, dirs: tuple[tuple[int, int], ...]) -> Grid | None:
    lone = _lone(g)
    solid = (g != 0) & ~lone
    if not lone.any() or not solid.any():
        return None
    h, w = g.shape
    out = np.where(lone, 0, g).astype(np.int8)

    def landing(y: int, x: int, ways: list[tuple[int, int]]) -> tuple[int, int, int, tuple[int, int]] | None:
        best = None
        for dy, dx in ways:
            yy, xx, d = y + dy, x + dx, 1
            while 0 <= yy < h and 0 <= xx < w:
                if solid[yy, xx] and (not same_colour or out[yy, xx] == g[y, x]):
                    if best is None or d < best[0]:
                        best = (d, yy - dy, xx - dx, (dy, dx))
                    break
                yy, xx, d = yy + dy, xx + dx, d + 1
        return best

    straight = [d for d in dirs if 0 in d]
    diagonal = [d for d in dirs if 0 not in d]
    movers = [(int(y), int(x)) for y, x in zip(*np.nonzero(lone))]
    first = {m: landing(*m, straight) or landing(*m, diagonal) for m in movers}
    ways = {m: f for m, f in first.items() if f is not None}
    moved = False
    for y, x in sorted(ways, key=lambda m: ways[m][0]):
        end = landing(y, x, [ways[(y, x)][3]])  # cells landed on the way stack up
        if end is None:
            continue
        out[end[1], end[2]] = g[y, x]
        solid[end[1], end[2]] = True
        moved = True
    return out if moved else None


@primitive(weight=0.3)
def pull_to_same(g: Grid) -> Grid | None:
    """Lone cells move along their row or column until they touch the nearest shape of their colour; lone
    cells with no such shape in line vanish."""
    return _pull(g, True, _FOUR)


@primitive(weight=0.3)
def pull_to_shapes(g: Grid) -> Grid | None:
    """Lone cells move (straight first, else diagonally) until they touch the nearest shape in line; lone
    cells with none vanish."""
    return _pull(g, False, _EIGHT)


# -- templates ---------------------------------------------------------------------------------
def _stamp(g: Grid, move: bool) -> Grid | None:
    labels, _ = ndimage.label(g != 0)
    boxes = ndimage.find_objects(labels)
    multi = [i for i, sl in enumerate(boxes, 1) if len(np.unique(g[sl][labels[sl] == i])) > 1]
    if len(multi) != 1:
        return None
    ti = multi[0]
    tsl = boxes[ti - 1]
    tpl = np.where(labels[tsl] == ti, g[tsl], 0)
    (th, tw), (h, w) = tpl.shape, g.shape
    out = g.copy()
    if move:
        out[labels == ti] = 0
    n = 0
    for i, sl in enumerate(boxes, 1):
        mh, mw = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
        if i == ti or mh > th or mw > tw or (th - mh) % 2 or (tw - mw) % 2:
            continue
        y0, x0 = sl[0].start - (th - mh) // 2, sl[1].start - (tw - mw) // 2
        if y0 < 0 or x0 < 0 or y0 + th > h or x0 + tw > w:
            return None
        out[labels == i] = 0
        region = out[y0:y0 + th, x0:x0 + tw]
        region[tpl != 0] = tpl[tpl != 0]
        n += 1
    return out if n else None


@primitive(weight=0.3)
def stamp_template(g: Grid) -> Grid | None:
    """The one multicolour shape (4-connected) copied onto every one-colour shape no larger than it, centred on it."""
    return _stamp(g, False)


@primitive(weight=0.2)
def stamp_template_move(g: Grid) -> Grid | None:
    """As ``stamp_template``, and the template itself erased."""
    return _stamp(g, True)


# -- recolouring ---------------------------------------------------------------------------------
@primitive(weight=0.3)
def recolor_by_lines(g: Grid) -> Grid | None:
    """Shapes of the most common colour take the one other colour in the rows they span, else in the columns
    they span; cells of shapes with neither take the one other colour of their own row or column."""
    vals, counts = np.unique(g[g != 0], return_counts=True)
    if len(vals) < 2:
        return None
    major = int(vals[np.argmax(counts)])
    out = g.copy()

    def other(a: np.ndarray) -> int | None:
        s = set(np.unique(a).tolist()) - {0, major}
        return s.pop() if len(s) == 1 else None

    labels, _ = ndimage.label(g == major)
    for i, sl in enumerate(ndimage.find_objects(labels), 1):
        c = other(g[sl[0], :]) or other(g[:, sl[1]])
        if c is not None:
            out[labels == i] = c
            continue
        for y, x in zip(*np.nonzero(labels == i)):
            c = other(g[y]) or other(g[:, x])
            if c is not None:
                out[y, x] = c
    return None if (out == g).all() else out


@primitive(weight=0.3)
def size_color4(g: Grid) -> Grid | None:
    """Every one-colour 4-connected object painted with its size (1-9); a colour map then names the sizes."""
    masks = []
    for c in np.unique(g[g != 0]).tolist():
        labels, n = ndimage.label(g == c)
        masks += [labels == i for i in range(1, n + 1)]
    if len(masks) < 2 or max(int(m.sum()) for m in masks) > 9:
        return None
    out = np.zeros_like(g)
    for m in masks:
        out[m] = m.sum()
    return out


@primitive(weight=0.3)
def bg_swap(g: Grid) -> Grid | None:
    """The most common colour swapped with background (0), so that later steps see it as background."""
    vals, counts = np.unique(g, return_counts=True)
    m = int(vals[np.argmax(counts)])
    if m == 0 or (counts == counts.max()).sum() > 1:
        return None
    lut = np.arange(10, dtype=np.int8)
    lut[m], lut[0] = 0, m
    return lut[g]


# -- symmetry ------------------------------------------------------------------------------------
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


# -- noise ---------------------------------------------------------------------------------------
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


def _majority(a: np.ndarray) -> int:
    vals, counts = np.unique(a, return_counts=True)
    return int(vals[np.argmax(counts)])


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
            near = [int(out[y + dy, x + dx]) for dy, dx in _FOUR if 0 <= y + dy < h and 0 <= x + dx < w]
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


# -- filling -------------------------------------------------------------------------------------
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
