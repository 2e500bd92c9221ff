"""Grid-to-grid primitives: geometry, scaling and tiling, cropping, gravity, symmetry, lines, colours.

Each function is marked with :func:`~._primitives.primitive` (types ``G -> G`` unless stated) and
its prior weight; see :mod:`._primitives`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from ._grid import Grid, Obj, objects
from ._primitives import fits, primitive


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


def _fall(col: np.ndarray) -> np.ndarray:
    keep = col[col != 0]
    return np.concatenate([np.zeros(len(col) - len(keep), np.int8), keep]).astype(np.int8)


@primitive(weight=0.8)
def gravity_down(g: Grid) -> Grid:
    return np.stack([_fall(g[:, j]) for j in range(g.shape[1])], axis=1)


@primitive(weight=0.6)
def gravity_up(g: Grid) -> Grid:
    return gravity_down(g[::-1])[::-1]


@primitive(weight=0.6)
def gravity_left(g: Grid) -> Grid:
    return gravity_down(g[:, ::-1].T).T[:, ::-1]


@primitive(weight=0.6)
def gravity_right(g: Grid) -> Grid:
    return gravity_down(g.T).T


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


@primitive(weight=0.6)
def hollow(g: Grid) -> Grid | None:
    """Clear the interior of solid shapes (cells whose 4 neighbours share their colour)."""
    p = np.pad(g, 1, constant_values=-1)
    same = (p[1:-1, 1:-1] != 0) & (p[:-2, 1:-1] == g) & (p[2:, 1:-1] == g) & (p[1:-1, :-2] == g) & (p[1:-1, 2:] == g)
    return np.where(same, 0, g).astype(np.int8) if same.any() else None


@primitive(weight=0.8)
def connect_pairs(g: Grid) -> Grid | None:
    """Draw a line between two cells of one colour in the same row or column (over background)."""
    out = g.copy()
    for view, res in ((g, out), (g.T, out.T)):
        for i, row in enumerate(view):
            for c in np.unique(row[row != 0]):
                idx = np.flatnonzero(row == c)
                if len(idx) >= 2:
                    seg = res[i, idx[0]:idx[-1] + 1]
                    seg[seg == 0] = c
    return None if np.array_equal(out, g) else out


def _rays(g: Grid, dirs: Sequence[tuple[int, int]]) -> Grid | None:
    out = g.copy()
    h, w = g.shape
    for y, x in zip(*np.nonzero(g)):
        c = g[y, x]
        for dy, dx in dirs:
            yy, xx = y + dy, x + dx
            while 0 <= yy < h and 0 <= xx < w and g[yy, xx] == 0:
                if out[yy, xx] == 0:
                    out[yy, xx] = c
                yy, xx = yy + dy, xx + dx
    return None if np.array_equal(out, g) or np.count_nonzero(g) > 40 else out


@primitive(weight=0.5)
def rays_v(g: Grid) -> Grid | None:
    return _rays(g, ((1, 0), (-1, 0)))


@primitive(weight=0.5)
def rays_h(g: Grid) -> Grid | None:
    return _rays(g, ((0, 1), (0, -1)))


@primitive(weight=0.5)
def rays_cross(g: Grid) -> Grid | None:
    return _rays(g, ((1, 0), (-1, 0), (0, 1), (0, -1)))


@primitive(weight=0.4)
def rays_diag(g: Grid) -> Grid | None:
    return _rays(g, ((1, 1), (-1, -1), (1, -1), (-1, 1)))


@primitive(weight=0.4)
def rays_down(g: Grid) -> Grid | None:
    return _rays(g, ((1, 0),))


@primitive(weight=0.8)
def continue_pattern(g: Grid) -> Grid | None:
    """Fill 0 cells by the smallest 2-D period that every non-zero cell agrees with."""
    h, w = g.shape
    ys, xs = np.nonzero(g)
    if len(ys) == 0 or len(ys) == g.size:
        return None
    vals = g[ys, xs].astype(np.int16)
    # every cell of the tile must be seen, so a tile has at most as many cells as g has non-zero ones; the
    # cells agree when each value equals the one written last at its place (no minimum/maximum per place)
    for area, py, px in sorted((py * px, py, px) for py in range(1, h + 1) for px in range(1, w + 1)
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


def _major(g: Grid) -> int | None:
    vals, counts = np.unique(g[g != 0], return_counts=True)
    return int(vals[np.argmax(counts)]) if len(vals) else None


def _minor(g: Grid) -> int | None:
    """The least frequent non-background colour, or ``None`` with fewer than two colours."""
    vals, counts = np.unique(g[g != 0], return_counts=True)
    return int(vals[np.argmin(counts)]) if len(vals) >= 2 else None


@primitive(weight=0.5)
def most_common_color(g: Grid) -> Grid | None:
    c = _major(g)
    return None if c is None else np.array([[c]], np.int8)


@primitive(weight=0.6)
def keep_major_color(g: Grid) -> Grid | None:
    c = _major(g)
    return None if c is None else np.where(g == c, g, 0).astype(np.int8)


@primitive(weight=0.6)
def drop_major_color(g: Grid) -> Grid | None:
    c = _major(g)
    return None if c is None else np.where(g == c, 0, g).astype(np.int8)


@primitive(weight=0.6)
def invert(g: Grid) -> Grid | None:
    """Swap background and the one foreground colour."""
    fg = np.unique(g[g != 0])
    return np.where(g == 0, fg[0], 0).astype(np.int8) if len(fg) == 1 else None


@primitive(weight=0.7)
def remove_noise(g: Grid) -> Grid | None:
    """Clear single cells that touch no cell of their colour (8 neighbours)."""
    out = g.copy()
    for o in objects(g, diagonal=True):
        if o.size == 1:
            out[o.top, o.left] = 0
    return None if np.array_equal(out, g) else out


@primitive(weight=0.8)
def keep_largest(g: Grid) -> Grid | None:
    """Keep only the largest connected shape (any colours, 8-connected) in place."""
    objs = objects(g, diagonal=True, multicolor=True)
    if len(objs) < 2:
        return None
    o = max(objs, key=lambda o: o.size)
    out = np.zeros_like(g)
    h, w = o.grid.shape
    out[o.top:o.top + h, o.left:o.left + w] = o.grid
    return out


def _paint(g: Grid, objs: Sequence[Obj], colours: Sequence[int], base: Grid | None = None) -> Grid:
    """Each object's cells in its colour, on background (or on a copy of ``base``)."""
    out = np.zeros_like(g) if base is None else base.copy()
    for o, c in zip(objs, colours):
        h, w = o.grid.shape
        box = out[o.top:o.top + h, o.left:o.left + w]
        box[o.grid != 0] = c
    return out


@primitive(weight=0.6)
def size_rank(g: Grid) -> Grid | None:
    """Paint each one-colour object with its size rank (1 = largest); a colour map then names the ranks."""
    objs = objects(g, diagonal=True)
    sizes = sorted({o.size for o in objs}, reverse=True)
    if not 1 < len(sizes) <= 9:
        return None
    return _paint(g, objs, [sizes.index(o.size) + 1 for o in objs])


@primitive(weight=0.5)
def size_color(g: Grid) -> Grid | None:
    """Paint each one-colour object with its size (1-9 cells); a colour map then names the sizes."""
    objs = objects(g, diagonal=True)
    if len(objs) < 2 or max(o.size for o in objs) > 9:
        return None
    return _paint(g, objs, [o.size for o in objs])


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


@primitive(weight=1.0, colour=True)
def fill_enclosed(g: Grid, c: int) -> Grid | None:
    """Paint background cells that cannot reach the border (holes inside shapes) with colour ``c``."""
    holes = ndimage.binary_fill_holes(g != 0) & (g == 0)
    return np.where(holes, c, g).astype(np.int8) if holes.any() else None


@primitive(weight=0.5, colour=True)
def border(g: Grid, c: int) -> Grid:
    out = g.copy()
    out[0, :] = out[-1, :] = c
    out[:, 0] = out[:, -1] = c
    return out


@primitive(weight=0.6, colour=True)
def outline_objs(g: Grid, c: int) -> Grid | None:
    """Paint background cells that touch a shape (8 neighbours) with colour ``c``."""
    halo = ndimage.binary_dilation(g != 0, np.ones((3, 3), bool)) & (g == 0)
    return np.where(halo, c, g).astype(np.int8) if halo.any() else None
