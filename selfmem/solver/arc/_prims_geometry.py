"""Geometry primitives: rotations and flips, scaling and tiling (also by the colour count and with
rotations), Kronecker products, cropping (to content, a frame, an outline, corners), halves, removing
repeated rows and columns, padding, shifts, gravity, sliding until contact, cells pulled to shapes and
fitting two shapes together.

Each function is marked with :func:`~._primitives.primitive`; :mod:`._registry` folds variants into
primitives with options and fixes the order.
"""

from __future__ import annotations


import numpy as np
from scipy import ndimage

from ._grid import CROSS, MAX_SIDE, Grid, objects
from ._primitives import fits, primitive
from ._prims_base import _STEPS4, _STEPS8, _shift


@primitive(weight=1.0)
def rot90(g: Grid) -> Grid:
    return np.rot90(g, 1)


@primitive(weight=1.0)
def rot180(g: Grid) -> Grid:
    return np.rot90(g, 2)


@primitive(weight=1.0)
def rot270(g: Grid) -> Grid:
    return np.rot90(g, 3)


@primitive(weight=1.2)
def flip_h(g: Grid) -> Grid:
    return g[:, ::-1]


@primitive(weight=1.2)
def flip_v(g: Grid) -> Grid:
    return g[::-1, :]


@primitive(weight=1.0)
def transpose(g: Grid) -> Grid:
    return g.T


@primitive(weight=0.6)
def antitranspose(g: Grid) -> Grid:
    return g[::-1, ::-1].T


def _upscale(g: Grid, k: int) -> Grid | None:
    return fits(np.kron(g, np.ones((k, k), np.int8)).astype(np.int8))


@primitive(weight=0.8)
def upscale2(g: Grid) -> Grid | None:
    return _upscale(g, 2)


@primitive(weight=0.8)
def upscale3(g: Grid) -> Grid | None:
    return _upscale(g, 3)


def _downscale(g: Grid, k: int) -> Grid | None:
    h, w = g.shape
    if h % k or w % k or h == k and w == k:
        return None
    return g[::k, ::k]


@primitive(weight=0.6)
def downscale2(g: Grid) -> Grid | None:
    return _downscale(g, 2)


@primitive(weight=0.6)
def downscale3(g: Grid) -> Grid | None:
    return _downscale(g, 3)


@primitive(weight=0.8)
def tile2x2(g: Grid) -> Grid | None:
    return fits(np.tile(g, (2, 2)))


@primitive(weight=0.6)
def tile3x3(g: Grid) -> Grid | None:
    return fits(np.tile(g, (3, 3)))


@primitive(weight=0.6)
def tile1x2(g: Grid) -> Grid | None:
    return fits(np.tile(g, (1, 2)))


@primitive(weight=0.6)
def tile2x1(g: Grid) -> Grid | None:
    return fits(np.tile(g, (2, 1)))


@primitive(weight=0.8)
def mirror_right(g: Grid) -> Grid | None:
    return fits(np.hstack([g, g[:, ::-1]]))


@primitive(weight=0.8)
def mirror_down(g: Grid) -> Grid | None:
    return fits(np.vstack([g, g[::-1, :]]))


@primitive(weight=0.8)
def mirror4(g: Grid) -> Grid | None:
    top = np.hstack([g, g[:, ::-1]])
    return fits(np.vstack([top, top[::-1, :]]))


@primitive(weight=0.6)
def self_kron(g: Grid) -> Grid | None:
    """Each non-zero cell becomes a copy of the grid (the fractal of 007bbfb7)."""
    return fits(np.kron((g != 0).astype(np.int8), g).astype(np.int8))


@primitive(weight=1.5)
def crop_content(g: Grid) -> Grid | None:
    ys, xs = np.nonzero(g)
    if len(ys) == 0:
        return None
    out = g[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    return None if out.shape == g.shape else out


def _halves(n: int) -> tuple[slice, slice]:
    """The two halves of ``n`` cells, leaving out the middle cell when ``n`` is odd."""
    return slice(0, n // 2), slice(n - n // 2, n)


@primitive(weight=0.8)
def left_half(g: Grid) -> Grid | None:
    return g[:, _halves(g.shape[1])[0]] if g.shape[1] > 1 else None


@primitive(weight=0.8)
def right_half(g: Grid) -> Grid | None:
    return g[:, _halves(g.shape[1])[1]] if g.shape[1] > 1 else None


@primitive(weight=0.8)
def top_half(g: Grid) -> Grid | None:
    return g[_halves(g.shape[0])[0], :] if g.shape[0] > 1 else None


@primitive(weight=0.8)
def bottom_half(g: Grid) -> Grid | None:
    return g[_halves(g.shape[0])[1], :] if g.shape[0] > 1 else None


@primitive(weight=0.8)
def dedupe(g: Grid) -> Grid | None:
    """Drop each row equal to the row above it, then each column equal to the one on its left."""
    rows = [0] + [i for i in range(1, g.shape[0]) if not np.array_equal(g[i], g[i - 1])]
    g2 = g[rows]
    cols = [0] + [j for j in range(1, g2.shape[1]) if not np.array_equal(g2[:, j], g2[:, j - 1])]
    out = g2[:, cols]
    return None if out.shape == g.shape else out


@primitive(weight=0.8)
def gravity_down(g: Grid) -> Grid:
    """Every coloured cell falls to the bottom of its column, keeping the column's order."""
    order = np.argsort(g != 0, axis=0, kind="stable")  # background first, then the cells top to bottom
    return np.take_along_axis(g, order, axis=0).astype(np.int8)


@primitive(weight=0.6)
def gravity_up(g: Grid) -> Grid:
    return gravity_down(g[::-1])[::-1]


@primitive(weight=0.6)
def gravity_left(g: Grid) -> Grid:
    return gravity_down(g[:, ::-1].T).T[:, ::-1]


@primitive(weight=0.6)
def gravity_right(g: Grid) -> Grid:
    return gravity_down(g.T).T


@primitive(weight=0.3)
def shift_down(g: Grid) -> Grid | None:
    return _shift(g, 1, 0)


@primitive(weight=0.3)
def shift_up(g: Grid) -> Grid | None:
    return _shift(g, -1, 0)


@primitive(weight=0.3)
def shift_right(g: Grid) -> Grid | None:
    return _shift(g, 0, 1)


@primitive(weight=0.3)
def shift_left(g: Grid) -> Grid | None:
    return _shift(g, 0, -1)


@primitive(weight=0.6)
def crop_frame(g: Grid) -> Grid | None:
    """The inside of the largest rectangle outlined by one colour (a frame at least 3 cells a side)."""
    best: tuple[int, Grid] | None = None
    for c in np.unique(g[g != 0]):
        lab, n = ndimage.label(g == c, CROSS)
        for i, sl in enumerate(ndimage.find_objects(lab), 1):
            box = lab[sl] == i
            bh, bw = box.shape
            if bh < 3 or bw < 3 or not (box[0].all() and box[-1].all() and box[:, 0].all() and box[:, -1].all()):
                continue
            inner = g[sl][1:-1, 1:-1]
            if best is None or inner.size > best[0]:
                best = (inner.size, inner)
    return None if best is None else best[1]


@primitive(weight=0.5)
def tile_rot4(g: Grid) -> Grid | None:
    """2 x 2 copies turning clockwise: the grid, 90, 180 and 270 degrees (7fe24cdd)."""
    if g.shape[0] != g.shape[1]:
        return None
    return fits(np.vstack([np.hstack([g, np.rot90(g, -1)]), np.hstack([np.rot90(g, 1), np.rot90(g, 2)])]))


@primitive(weight=0.4)
def mirror_left(g: Grid) -> Grid | None:
    return fits(np.hstack([g[:, ::-1], g]))


@primitive(weight=0.4)
def mirror_up(g: Grid) -> Grid | None:
    return fits(np.vstack([g[::-1, :], g]))


@primitive(weight=0.4)
def upscale_ncolors(g: Grid) -> Grid | None:
    """Each cell becomes a k x k block, k = the number of colours (469497ad)."""
    k = len(np.unique(g[g != 0]))
    return None if k < 2 else fits(np.kron(g, np.ones((k, k), np.int8)).astype(np.int8))


@primitive(weight=0.4)
def tile_self(g: Grid) -> Grid | None:
    """The grid repeated h x w times (its own shape)."""
    return fits(np.tile(g, g.shape)) if g.size > 1 else None


@primitive(weight=0.4)
def kron_major(g: Grid) -> Grid | None:
    """Each cell of the most common colour becomes a copy of the grid, the others background (c3e719e8)."""
    vals, counts = np.unique(g, return_counts=True)
    if len(vals) < 2:
        return None
    return fits(np.kron((g == vals[np.argmax(counts)]).astype(np.int8), g).astype(np.int8))


@primitive(weight=0.3)
def pad_edge(g: Grid) -> Grid | None:
    """Repeat the outer rows and columns once outwards, background in the corners (49d1d64f)."""
    out = np.pad(g, 1, mode="edge")
    out[0, 0] = out[0, -1] = out[-1, 0] = out[-1, -1] = 0
    return fits(out)


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
        labels, _ = ndimage.label(g == c, CROSS)
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




def _lone(g: Grid) -> np.ndarray:
    """Coloured cells with no coloured 8-neighbour."""
    p = np.pad(g != 0, 1)
    h, w = g.shape
    n = sum(p[1 + dy:1 + dy + h, 1 + dx:1 + dx + w].astype(np.int8) for dy, dx in _STEPS8)
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
    return _pull(g, True, _STEPS4)


@primitive(weight=0.3)
def pull_to_shapes(g: Grid) -> Grid | None:
    """Lone cells move (straight first, else diagonally) until they touch the nearest shape in line; lone
    cells with none vanish."""
    return _pull(g, False, _STEPS8)


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
