"""The grid DSL: typed primitives, each a small pure function, and programs composed of them.

Values have one of four types: ``G`` a grid, ``O`` a tuple of objects, ``P`` a pair of grids of one
shape, ``I`` a count. A primitive maps one type to another, optionally taking a colour argument (the
candidates are fitted to the task: the colours its train outputs use). A :class:`Program` is a chain
of steps from the input grid to a grid, written ``"rot90 | crop_content | fill_enclosed(4)"``; the
final ``colormap(1>2,3>4)`` step is learned from the train pairs. A primitive that does not apply
(no objects, a grid that would exceed 30 cells a side) returns ``None`` and the search skips it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from ..._errors import InvalidInputError
from ._grid import MAX_SIDE, Grid, Obj, objects
from ._learned import RULES, apply_colormap, apply_rule, fit_colormap, fit_rule

__all__ = ["Primitive", "Step", "Program", "PRIMITIVES", "LEARNED", "run_program", "fit_colormap", "apply_colormap",
           "candidate_colors"]

LEARNED = ("colormap",) + tuple(f"rule_{k}" for k in RULES)
"""Steps fitted to each task's train pairs (not searched over: tried at every grid the search reaches)."""


@dataclass(frozen=True)
class Primitive:
    """One DSL primitive: ``fn(value[, colour]) -> value or None`` from type ``src`` to type ``dst``."""

    name: str
    fn: Callable[..., Any]
    src: str
    dst: str
    colour_arg: bool = False
    weight: float = 1.0


# -- geometry ---------------------------------------------------------------------
def rot90(g: Grid) -> Grid:
    return np.rot90(g, 1)


def rot180(g: Grid) -> Grid:
    return np.rot90(g, 2)


def rot270(g: Grid) -> Grid:
    return np.rot90(g, 3)


def flip_h(g: Grid) -> Grid:
    return g[:, ::-1]


def flip_v(g: Grid) -> Grid:
    return g[::-1, :]


def transpose(g: Grid) -> Grid:
    return g.T


def antitranspose(g: Grid) -> Grid:
    return g[::-1, ::-1].T


# -- scaling and tiling ----------------------------------------------------------
def _fits(g: Grid) -> Grid | None:
    return g if max(g.shape) <= MAX_SIDE else None


def _upscale(g: Grid, k: int) -> Grid | None:
    return _fits(np.kron(g, np.ones((k, k), np.int8)).astype(np.int8))


def upscale2(g: Grid) -> Grid | None:
    return _upscale(g, 2)


def upscale3(g: Grid) -> Grid | None:
    return _upscale(g, 3)


def _downscale(g: Grid, k: int) -> Grid | None:
    h, w = g.shape
    if h % k or w % k or h == k and w == k:
        return None
    return g[::k, ::k]


def downscale2(g: Grid) -> Grid | None:
    return _downscale(g, 2)


def downscale3(g: Grid) -> Grid | None:
    return _downscale(g, 3)


def tile2x2(g: Grid) -> Grid | None:
    return _fits(np.tile(g, (2, 2)))


def tile3x3(g: Grid) -> Grid | None:
    return _fits(np.tile(g, (3, 3)))


def tile1x2(g: Grid) -> Grid | None:
    return _fits(np.tile(g, (1, 2)))


def tile2x1(g: Grid) -> Grid | None:
    return _fits(np.tile(g, (2, 1)))


def mirror_right(g: Grid) -> Grid | None:
    return _fits(np.hstack([g, g[:, ::-1]]))


def mirror_down(g: Grid) -> Grid | None:
    return _fits(np.vstack([g, g[::-1, :]]))


def mirror4(g: Grid) -> Grid | None:
    top = np.hstack([g, g[:, ::-1]])
    return _fits(np.vstack([top, top[::-1, :]]))


def self_kron(g: Grid) -> Grid | None:
    """Each non-zero cell becomes a copy of the grid (the fractal of 007bbfb7)."""
    return _fits(np.kron((g != 0).astype(np.int8), g).astype(np.int8))


# -- cropping ------------------------------------------------------------------
def crop_content(g: Grid) -> Grid | None:
    ys, xs = np.nonzero(g)
    if len(ys) == 0:
        return None
    out = g[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    return None if out.shape == g.shape else out


def _halves(n: int) -> tuple[slice, slice]:
    """The two halves of ``n`` cells, leaving out the middle cell when ``n`` is odd."""
    return slice(0, n // 2), slice(n - n // 2, n)


def left_half(g: Grid) -> Grid | None:
    return g[:, _halves(g.shape[1])[0]] if g.shape[1] > 1 else None


def right_half(g: Grid) -> Grid | None:
    return g[:, _halves(g.shape[1])[1]] if g.shape[1] > 1 else None


def top_half(g: Grid) -> Grid | None:
    return g[_halves(g.shape[0])[0], :] if g.shape[0] > 1 else None


def bottom_half(g: Grid) -> Grid | None:
    return g[_halves(g.shape[0])[1], :] if g.shape[0] > 1 else None


def dedupe(g: Grid) -> Grid | None:
    """Drop each row equal to the row above it, then each column equal to the one on its left."""
    rows = [0] + [i for i in range(1, g.shape[0]) if not np.array_equal(g[i], g[i - 1])]
    g2 = g[rows]
    cols = [0] + [j for j in range(1, g2.shape[1]) if not np.array_equal(g2[:, j], g2[:, j - 1])]
    out = g2[:, cols]
    return None if out.shape == g.shape else out


# -- gravity -------------------------------------------------------------------
def _fall(col: np.ndarray) -> np.ndarray:
    keep = col[col != 0]
    return np.concatenate([np.zeros(len(col) - len(keep), np.int8), keep]).astype(np.int8)


def gravity_down(g: Grid) -> Grid:
    return np.stack([_fall(g[:, j]) for j in range(g.shape[1])], axis=1)


def gravity_up(g: Grid) -> Grid:
    return gravity_down(g[::-1])[::-1]


def gravity_right(g: Grid) -> Grid:
    return gravity_down(g.T).T


def gravity_left(g: Grid) -> Grid:
    return gravity_down(g[:, ::-1].T).T[:, ::-1]


# -- symmetry completion --------------------------------------------------------
def _complete(g: Grid, mirrored: Grid) -> Grid | None:
    if mirrored.shape != g.shape:
        return None
    return np.where(g == 0, mirrored, g).astype(np.int8)


def sym_h(g: Grid) -> Grid | None:
    return _complete(g, g[:, ::-1])


def sym_v(g: Grid) -> Grid | None:
    return _complete(g, g[::-1, :])


def sym_rot(g: Grid) -> Grid | None:
    return _complete(g, np.rot90(g, 2))


def sym_all(g: Grid) -> Grid | None:
    """Fill 0 cells from every mirror image (left-right, up-down, 180 degrees, and the diagonal if square)."""
    out = g
    for _ in range(2):
        for m in (out[:, ::-1], out[::-1, :], np.rot90(out, 2)) + ((out.T,) if g.shape[0] == g.shape[1] else ()):
            out = np.where(out == 0, m, out).astype(np.int8)
    return out


# -- regions, outlines and lines -------------------------------------------------
def fill_enclosed(g: Grid, c: int) -> Grid | None:
    """Paint background cells that cannot reach the border (holes inside shapes) with colour ``c``."""
    holes = ndimage.binary_fill_holes(g != 0) & (g == 0)
    return np.where(holes, c, g).astype(np.int8) if holes.any() else None


def hollow(g: Grid) -> Grid | None:
    """Clear the interior of solid shapes (cells whose 4 neighbours share their colour)."""
    p = np.pad(g, 1, constant_values=-1)
    same = (p[1:-1, 1:-1] != 0) & (p[:-2, 1:-1] == g) & (p[2:, 1:-1] == g) & (p[1:-1, :-2] == g) & (p[1:-1, 2:] == g)
    return np.where(same, 0, g).astype(np.int8) if same.any() else None


def border(g: Grid, c: int) -> Grid:
    out = g.copy()
    out[0, :] = out[-1, :] = c
    out[:, 0] = out[:, -1] = c
    return out


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


def rays_v(g: Grid) -> Grid | None:
    return _rays(g, ((1, 0), (-1, 0)))


def rays_h(g: Grid) -> Grid | None:
    return _rays(g, ((0, 1), (0, -1)))


def rays_cross(g: Grid) -> Grid | None:
    return _rays(g, ((1, 0), (-1, 0), (0, 1), (0, -1)))


def rays_diag(g: Grid) -> Grid | None:
    return _rays(g, ((1, 1), (-1, -1), (1, -1), (-1, 1)))


def rays_down(g: Grid) -> Grid | None:
    return _rays(g, ((1, 0),))


def continue_pattern(g: Grid) -> Grid | None:
    """Fill 0 cells by the smallest 2-D period that every non-zero cell agrees with."""
    h, w = g.shape
    ys, xs = np.nonzero(g)
    if len(ys) == 0 or len(ys) == g.size:
        return None
    vals = g[ys, xs].astype(np.int16)
    for area, py, px in sorted((py * px, py, px) for py in range(1, h + 1) for px in range(1, w + 1)
                               if py * px < g.size and (py < h or px < w)):
        idx = (ys % py) * px + (xs % px)
        lo = np.full(area, 99, np.int16)
        hi = np.full(area, -1, np.int16)
        np.minimum.at(lo, idx, vals)
        np.maximum.at(hi, idx, vals)
        if (hi < 0).any() or (lo != hi).any():
            continue
        tile = lo.reshape(py, px).astype(np.int8)
        full = np.tile(tile, (h // py + 1, w // px + 1))[:h, :w]
        return full
    return None


# -- colours ---------------------------------------------------------------------
def _major(g: Grid) -> int | None:
    vals, counts = np.unique(g[g != 0], return_counts=True)
    return int(vals[np.argmax(counts)]) if len(vals) else None


def most_common_color(g: Grid) -> Grid | None:
    c = _major(g)
    return None if c is None else np.array([[c]], np.int8)


def keep_major_color(g: Grid) -> Grid | None:
    c = _major(g)
    return None if c is None else np.where(g == c, g, 0).astype(np.int8)


def drop_major_color(g: Grid) -> Grid | None:
    c = _major(g)
    return None if c is None else np.where(g == c, 0, g).astype(np.int8)


def invert(g: Grid) -> Grid | None:
    """Swap background and the one foreground colour."""
    fg = np.unique(g[g != 0])
    return np.where(g == 0, fg[0], 0).astype(np.int8) if len(fg) == 1 else None


def remove_noise(g: Grid) -> Grid | None:
    """Clear single cells that touch no cell of their colour (8 neighbours)."""
    out = g.copy()
    for o in objects(g, diagonal=True):
        if o.size == 1:
            out[o.top, o.left] = 0
    return None if np.array_equal(out, g) else out


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


def _paint(g: Grid, objs: Sequence[Obj], colours: Sequence[int]) -> Grid:
    out = np.zeros_like(g)
    for o, c in zip(objs, colours):
        h, w = o.grid.shape
        box = out[o.top:o.top + h, o.left:o.left + w]
        box[o.grid != 0] = c
    return out


def size_rank(g: Grid) -> Grid | None:
    """Paint each one-colour object with its size rank (1 = largest); a colour map then names the ranks."""
    objs = objects(g, diagonal=True)
    sizes = sorted({o.size for o in objs}, reverse=True)
    if not 1 < len(sizes) <= 9:
        return None
    return _paint(g, objs, [sizes.index(o.size) + 1 for o in objs])


def size_color(g: Grid) -> Grid | None:
    """Paint each one-colour object with its size (1-9 cells); a colour map then names the sizes."""
    objs = objects(g, diagonal=True)
    if len(objs) < 2 or max(o.size for o in objs) > 9:
        return None
    return _paint(g, objs, [o.size for o in objs])


def outline_objs(g: Grid, c: int) -> Grid | None:
    """Paint background cells that touch a shape (8 neighbours) with colour ``c``."""
    halo = ndimage.binary_dilation(g != 0, np.ones((3, 3), bool)) & (g == 0)
    return np.where(halo, c, g).astype(np.int8) if halo.any() else None


def period_tile(g: Grid) -> Grid | None:
    """The smallest tile that the whole grid repeats (cut at the edges)."""
    h, w = g.shape
    for py, px in sorted(((py, px) for py in range(1, h + 1) for px in range(1, w + 1) if py < h or px < w),
                         key=lambda t: t[0] * t[1]):
        tile = g[:py, :px]
        if np.array_equal(np.tile(tile, (h // py + 1, w // px + 1))[:h, :w], g):
            return tile
    return None


# -- objects -------------------------------------------------------------------------
def objs_color(g: Grid) -> tuple[Obj, ...] | None:
    """Single-colour 4-connected objects."""
    return objects(g) or None


def objs_multi(g: Grid) -> tuple[Obj, ...] | None:
    """Multicolour 8-connected objects."""
    return objects(g, diagonal=True, multicolor=True) or None


def color_groups(g: Grid) -> tuple[Obj, ...] | None:
    """One object per colour: all its cells, cropped to their box."""
    out = []
    for c in np.unique(g[g != 0]):
        ys, xs = np.nonzero(g == c)
        box = g[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
        out.append(Obj(np.where(box == c, box, 0).astype(np.int8), int(ys.min()), int(xs.min()), len(ys), (int(c),)))
    return tuple(out) or None


def cells_grid(g: Grid) -> tuple[Obj, ...] | None:
    """The cells of a grid divided by full rows and columns of one colour, as objects (reading order)."""
    def lines(a: Grid) -> list[int]:
        return [i for i in range(a.shape[0]) if a[i, 0] != 0 and (a[i] == a[i, 0]).all()]
    rows, cols = lines(g), lines(g.T)
    if not rows and not cols:
        return None
    out = []
    rb = [-1] + rows + [g.shape[0]]
    cb = [-1] + cols + [g.shape[1]]
    for r0, r1 in zip(rb, rb[1:]):
        for c0, c1 in zip(cb, cb[1:]):
            if r1 - r0 > 1 and c1 - c0 > 1:
                cell = g[r0 + 1:r1, c0 + 1:c1]
                vals, counts = np.unique(cell[cell != 0], return_counts=True)
                colors = tuple(int(v) for v in vals[np.argsort(-counts, kind="stable")])
                out.append(Obj(cell, r0 + 1, c0 + 1, int(np.count_nonzero(cell)), colors))
    return tuple(out) if len(out) > 1 else None


def _pick(objs: tuple[Obj, ...], key: Callable[[Obj], Any]) -> Grid | None:
    """The one object with the highest ``key`` (None when two share it)."""
    if len(objs) < 2:
        return None
    scores = [key(o) for o in objs]
    best = max(scores)
    if scores.count(best) > 1:
        return None
    return objs[scores.index(best)].grid


def obj_largest(objs: tuple[Obj, ...]) -> Grid | None:
    return _pick(objs, lambda o: o.size)


def obj_smallest(objs: tuple[Obj, ...]) -> Grid | None:
    return _pick(objs, lambda o: -o.size)


def obj_biggest_box(objs: tuple[Obj, ...]) -> Grid | None:
    return _pick(objs, lambda o: o.grid.size)


def obj_first(objs: tuple[Obj, ...]) -> Grid | None:
    return objs[0].grid if len(objs) > 1 else None


def obj_last(objs: tuple[Obj, ...]) -> Grid | None:
    return objs[-1].grid if len(objs) > 1 else None


def obj_unique_color(objs: tuple[Obj, ...]) -> Grid | None:
    """The object whose main colour no other object has."""
    firsts = [o.colors[0] for o in objs]
    lone = [o for o in objs if firsts.count(o.colors[0]) == 1]
    return lone[0].grid if len(objs) > 2 and len(lone) == 1 else None


def obj_unique_shape(objs: tuple[Obj, ...]) -> Grid | None:
    """The object whose shape (mask) no other object has."""
    shapes = [(o.grid != 0).tobytes() + bytes(o.grid.shape) for o in objs]
    lone = [o for o, s in zip(objs, shapes) if shapes.count(s) == 1]
    return lone[0].grid if len(objs) > 2 and len(lone) == 1 else None


def obj_most_colors(objs: tuple[Obj, ...]) -> Grid | None:
    return _pick(objs, lambda o: len(o.colors))


def obj_count(objs: tuple[Obj, ...]) -> int:
    return len(objs)


def count_colors(g: Grid) -> int | None:
    n = len(np.unique(g[g != 0]))
    return n or None


def count_cells(g: Grid) -> int | None:
    n = int(np.count_nonzero(g))
    return n if 0 < n <= MAX_SIDE else None


def row_of(n: int, c: int) -> Grid | None:
    return np.full((1, n), c, np.int8) if 0 < n <= MAX_SIDE else None


def col_of(n: int, c: int) -> Grid | None:
    return np.full((n, 1), c, np.int8) if 0 < n <= MAX_SIDE else None


# -- pairs: two halves combined cell by cell -------------------------------------
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


def split_lr(g: Grid) -> tuple[Grid, Grid] | None:
    return _split(g) if g.shape[1] > 1 else None


def split_tb(g: Grid) -> tuple[Grid, Grid] | None:
    if g.shape[0] < 2:
        return None
    pair = _split(g.T)
    return None if pair is None else (pair[0].T, pair[1].T)


def p_and(p: tuple[Grid, Grid], c: int) -> Grid:
    return np.where((p[0] != 0) & (p[1] != 0), c, 0).astype(np.int8)


def p_or(p: tuple[Grid, Grid], c: int) -> Grid:
    return np.where((p[0] != 0) | (p[1] != 0), c, 0).astype(np.int8)


def p_xor(p: tuple[Grid, Grid], c: int) -> Grid:
    return np.where((p[0] != 0) ^ (p[1] != 0), c, 0).astype(np.int8)


def p_nor(p: tuple[Grid, Grid], c: int) -> Grid:
    return np.where((p[0] == 0) & (p[1] == 0), c, 0).astype(np.int8)


def p_overlay(p: tuple[Grid, Grid]) -> Grid:
    return np.where(p[0] != 0, p[0], p[1]).astype(np.int8)


def p_underlay(p: tuple[Grid, Grid]) -> Grid:
    return np.where(p[1] != 0, p[1], p[0]).astype(np.int8)


def _prims() -> tuple[Primitive, ...]:
    g2g = [(rot90, 1.0), (rot180, 1.0), (rot270, 1.0), (flip_h, 1.2), (flip_v, 1.2), (transpose, 1.0),
           (antitranspose, 0.6), (upscale2, 0.8), (upscale3, 0.8), (downscale2, 0.6), (downscale3, 0.6),
           (tile2x2, 0.8), (tile3x3, 0.6), (tile1x2, 0.6), (tile2x1, 0.6), (mirror_right, 0.8), (mirror_down, 0.8),
           (mirror4, 0.8), (self_kron, 0.6), (crop_content, 1.5), (left_half, 0.8), (right_half, 0.8),
           (top_half, 0.8), (bottom_half, 0.8), (dedupe, 0.8), (gravity_down, 0.8), (gravity_up, 0.6),
           (gravity_left, 0.6), (gravity_right, 0.6), (sym_h, 0.6), (sym_v, 0.6), (sym_rot, 0.5), (sym_all, 0.8),
           (hollow, 0.6), (connect_pairs, 0.8), (rays_v, 0.5), (rays_h, 0.5), (rays_cross, 0.5), (rays_diag, 0.4),
           (rays_down, 0.4), (continue_pattern, 0.8), (most_common_color, 0.5), (keep_major_color, 0.6),
           (drop_major_color, 0.6), (invert, 0.6), (remove_noise, 0.7), (keep_largest, 0.8),
           (size_rank, 0.6), (size_color, 0.5), (period_tile, 0.6)]
    prims = [Primitive(f.__name__, f, "G", "G", False, w) for f, w in g2g]
    prims += [Primitive(f.__name__, f, "G", "G", True, w) for f, w in ((fill_enclosed, 1.0), (border, 0.5), (outline_objs, 0.6))]
    prims += [Primitive(f.__name__, f, "G", "O", False, w) for f, w in ((objs_color, 0.8), (objs_multi, 1.0),
                                                                          (color_groups, 0.4), (cells_grid, 0.6))]
    prims += [Primitive(f.__name__, f, "O", "G", False, w) for f, w in (
        (obj_largest, 1.0), (obj_smallest, 0.8), (obj_biggest_box, 0.5), (obj_first, 0.4), (obj_last, 0.4),
        (obj_unique_color, 0.6), (obj_unique_shape, 0.6), (obj_most_colors, 0.5))]
    prims += [Primitive("obj_count", obj_count, "O", "I", False, 0.4),
              Primitive("count_colors", count_colors, "G", "I", False, 0.3),
              Primitive("count_cells", count_cells, "G", "I", False, 0.3),
              Primitive("row_of", row_of, "I", "G", True, 0.5), Primitive("col_of", col_of, "I", "G", True, 0.4),
              Primitive("split_lr", split_lr, "G", "P", False, 0.6), Primitive("split_tb", split_tb, "G", "P", False, 0.6)]
    prims += [Primitive(f.__name__, f, "P", "G", True, 0.6) for f in (p_and, p_or, p_xor, p_nor)]
    prims += [Primitive(f.__name__, f, "P", "G", False, 0.5) for f in (p_overlay, p_underlay)]
    return tuple(prims)


PRIMITIVES: dict[str, Primitive] = {p.name: p for p in _prims()}


# -- programs --------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    """One step: a primitive's name and its argument (a colour, or the colour map's pairs)."""

    name: str
    arg: int | tuple[tuple[int, int], ...] | None = None

    def __str__(self) -> str:
        if self.arg is None:
            return self.name
        if isinstance(self.arg, tuple):
            return f"{self.name}({','.join(f'{a}>{b}' for a, b in self.arg)})"
        return f"{self.name}({self.arg})"


_STEP = re.compile(r"^([a-z_0-9]+)(?:\(([0-9>,\s]*)\))?$")


@dataclass(frozen=True)
class Program:
    """A chain of steps from the input grid to the output grid.

    >>> p = Program.parse("rot90 | fill_enclosed(4)")
    >>> str(p), len(p)
    ('rot90 | fill_enclosed(4)', 2)
    """

    steps: tuple[Step, ...]

    def __len__(self) -> int:
        return len(self.steps)

    def __str__(self) -> str:
        return " | ".join(str(s) for s in self.steps) or "identity"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.steps)

    @classmethod
    def parse(cls, text: str) -> Program:
        """Read ``"a | b(3) | colormap(1>2)"``; raises InvalidInputError on unknown or mistyped steps."""
        if not isinstance(text, str):
            raise InvalidInputError(f"a program is text like 'rot90 | crop_content', got {type(text).__name__}")
        text = text.strip()
        if text == "identity":
            return cls(())
        steps, kind = [], "G"
        for part in text.split("|"):
            m = _STEP.match(part.strip())
            if not m:
                raise InvalidInputError(f"cannot read program step {part.strip()!r}: expected name or name(args)")
            name, raw = m.group(1), m.group(2)
            if name == "colormap":
                try:
                    pairs = tuple(tuple(int(x) for x in pr.split(">")) for pr in (raw or "").split(",") if pr.strip())
                except ValueError as exc:
                    raise InvalidInputError(f"colormap arguments are a>b pairs, got {raw!r}") from exc
                if kind != "G" or any(len(p) != 2 or not all(0 <= v <= 9 for v in p) for p in pairs):
                    raise InvalidInputError(f"bad colormap step {part.strip()!r}")
                steps.append(Step(name, tuple((p[0], p[1]) for p in pairs)))
                continue
            if name in LEARNED:
                if kind != "G" or raw:
                    raise InvalidInputError(f"{name} follows a grid step and takes no argument")
                steps.append(Step(name))
                continue
            prim = PRIMITIVES.get(name)
            if prim is None:
                raise InvalidInputError(f"unknown primitive {name!r}; known: {', '.join(sorted(PRIMITIVES))}")
            if prim.src != kind:
                raise InvalidInputError(f"{name} takes a {prim.src} value but gets a {kind} value in {text!r}")
            if prim.colour_arg != (raw is not None and raw.strip() != ""):
                raise InvalidInputError(f"{name} {'needs a colour argument' if prim.colour_arg else 'takes no argument'}")
            arg = int(raw) if prim.colour_arg else None
            if arg is not None and not 0 <= arg <= 9:
                raise InvalidInputError(f"{name}: colour must be 0-9, got {arg}")
            steps.append(Step(name, arg))
            kind = prim.dst
        if kind != "G":
            raise InvalidInputError(f"program {text!r} must end with a grid, ends with type {kind}")
        return cls(tuple(steps))


def apply_step(step: Step, value: Any) -> Any:
    """One step on one value; ``None`` when the primitive does not apply (or is a rule needing train pairs)."""
    if step.name == "colormap":
        assert isinstance(step.arg, tuple)  # Program.parse gives a colour map its pairs
        return apply_colormap(value, step.arg)
    if step.name in LEARNED:
        return None
    prim = PRIMITIVES[step.name]
    out = prim.fn(value) if step.arg is None else prim.fn(value, step.arg)
    if isinstance(out, np.ndarray) and (out.size == 0 or max(out.shape) > MAX_SIDE):
        return None
    return out


def run_program(program: Program, grid: Grid, train: Sequence[tuple[Grid, Grid]] = ()) -> Grid | None:
    """Apply every step; ``None`` when a step does not apply.

    Rule steps (``rule_patch3``, ...) are fitted on ``train`` (input/output pairs) on the way.

    >>> run_program(Program.parse("flip_h"), np.array([[1, 2]], np.int8)).tolist()
    [[2, 1]]
    """
    value: Any = grid
    values: list[Any] = [i for i, _ in train]
    for step in program.steps:
        if step.name in LEARNED and step.name != "colormap":
            if not values or any(v is None for v in values):
                return None
            table = fit_rule(step.name[5:], values, [o for _, o in train])
            value = None if table is None else apply_rule(step.name[5:], table, value)
        else:
            value = apply_step(step, value)
            values = [None if v is None else apply_step(step, v) for v in values]
        if value is None:
            return None
    return value if isinstance(value, np.ndarray) else None


def candidate_colors(targets: Sequence[Grid], inputs: Sequence[Grid], limit: int = 3) -> tuple[int, ...]:
    """Colour arguments worth trying: colours new in the outputs first, then those every output uses."""
    new: dict[int, int] = {}
    common = set(range(10))
    for i, t in zip(inputs, targets):
        common &= set(np.unique(t).tolist())
        for c in set(np.unique(t).tolist()) - set(np.unique(i).tolist()):
            new[c] = new.get(c, 0) + 1
    order = sorted(new, key=lambda c: -new[c]) + sorted(common - set(new) - {0})
    return tuple(order[:limit])
