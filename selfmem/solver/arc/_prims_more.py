"""Primitives added for issue 24 where the training tasks the first DSL left unsolved needed them.

Grid to grid: moves (shifts by one cell, objects falling as rigid bodies), compaction and framing
(dropping empty rows and columns, the inside of a frame, a majority-colour cell per block of a grid
divided by lines), tilings with rotations and by the colour count, recolouring whole objects by a
property (largest, smallest, holes, touching the border, shape) and painting around them (their boxes,
the outside region). Objects to grid: picks by holes, symmetry, position and colour count, and the
overlay of all objects (the cells of a divided grid combined). Each is marked with
:func:`~._primitives.primitive`; the weights are low so that the memory-free search keeps its order
on the first DSL's programs at equal depth.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from ._prims_grid import _paint
from ._prims_objects import _pick
from ._grid import Grid, Obj, objects
from ._primitives import fits, primitive

_FOUR = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool)


# -- moves -----------------------------------------------------------------------------
def _shift(g: Grid, dy: int, dx: int) -> Grid | None:
    if not g.any():
        return None
    out = np.zeros_like(g)
    h, w = g.shape
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = g[max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


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


def _drop_objects(g: Grid) -> Grid | None:
    """Multicolour objects fall down as rigid bodies until they rest on the floor or on another object."""
    objs = objects(g, diagonal=True, multicolor=True)
    if not objs or len(objs) > 30:
        return None
    out = np.zeros_like(g)
    h = g.shape[0]
    for o in sorted(objs, key=lambda o: -(o.top + o.grid.shape[0])):
        mask = o.grid != 0
        oh, ow = o.grid.shape
        top = o.top
        while top + oh < h and not (out[top + 1:top + 1 + oh, o.left:o.left + ow][mask] != 0).any():
            top += 1
        box = out[top:top + oh, o.left:o.left + ow]
        box[mask] = o.grid[mask]
    return None if np.array_equal(out, g) else out


@primitive(weight=0.4)
def drop_down(g: Grid) -> Grid | None:
    return _drop_objects(g)


@primitive(weight=0.3)
def drop_up(g: Grid) -> Grid | None:
    out = _drop_objects(g[::-1])
    return None if out is None else out[::-1]


@primitive(weight=0.3)
def drop_right(g: Grid) -> Grid | None:
    out = _drop_objects(g.T)
    return None if out is None else out.T


@primitive(weight=0.3)
def drop_left(g: Grid) -> Grid | None:
    out = _drop_objects(g.T[::-1])
    return None if out is None else out[::-1].T


# -- compaction and framing ------------------------------------------------------------------
@primitive(weight=0.6)
def compress(g: Grid) -> Grid | None:
    """Drop every all-background row and column."""
    rows, cols = g.any(axis=1), g.any(axis=0)
    if rows.all() and cols.all() or not rows.any():
        return None
    return g[rows][:, cols]


@primitive(weight=0.6)
def crop_frame(g: Grid) -> Grid | None:
    """The inside of the largest rectangle outlined by one colour (a frame at least 3 cells a side)."""
    best: tuple[int, Grid] | None = None
    for c in np.unique(g[g != 0]):
        lab, n = ndimage.label(g == c)
        for i, sl in enumerate(ndimage.find_objects(lab), 1):
            box = lab[sl] == i
            bh, bw = box.shape
            if bh < 3 or bw < 3 or not (box[0].all() and box[-1].all() and box[:, 0].all() and box[:, -1].all()):
                continue
            inner = g[sl][1:-1, 1:-1]
            if best is None or inner.size > best[0]:
                best = (inner.size, inner)
    return None if best is None else best[1]


def _block_bounds(g: Grid) -> tuple[list[int], list[int]] | None:
    """Rows and columns of full lines of one colour dividing the grid, with the outer bounds."""
    def lines(a: Grid) -> list[int]:
        return [i for i in range(a.shape[0]) if a[i, 0] != 0 and (a[i] == a[i, 0]).all()]
    rows, cols = lines(g), lines(g.T)
    if not rows and not cols:
        return None
    return [-1] + rows + [g.shape[0]], [-1] + cols + [g.shape[1]]


@primitive(weight=0.5)
def cells_majority(g: Grid) -> Grid | None:
    """One cell per block of a grid divided by lines: the block's most common non-background colour."""
    bounds = _block_bounds(g)
    if bounds is None:
        return None
    rb = [(a, b) for a, b in zip(bounds[0], bounds[0][1:]) if b - a > 1]
    cb = [(a, b) for a, b in zip(bounds[1], bounds[1][1:]) if b - a > 1]
    if len(rb) * len(cb) < 2:
        return None
    out = np.zeros((len(rb), len(cb)), np.int8)
    for y, (r0, r1) in enumerate(rb):
        for x, (c0, c1) in enumerate(cb):
            cell = g[r0 + 1:r1, c0 + 1:c1]
            vals, counts = np.unique(cell[cell != 0], return_counts=True)
            out[y, x] = vals[np.argmax(counts)] if len(vals) else 0
    return out


# -- tilings ------------------------------------------------------------------------------
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


# -- recolouring whole objects ----------------------------------------------------------------
def _objs(g: Grid) -> tuple[Obj, ...]:
    return objects(g, diagonal=True)


def _holes(o: Obj) -> int:
    mask = o.grid != 0
    return int(ndimage.label(ndimage.binary_fill_holes(mask) & ~mask, _FOUR)[1])


def _touches_border(o: Obj, shape: tuple[int, ...]) -> bool:
    return o.top == 0 or o.left == 0 or o.top + o.grid.shape[0] == shape[0] or o.left + o.grid.shape[1] == shape[1]


def _paint_index(g: Grid, objs: Sequence[Obj], index: Sequence[int]) -> Grid | None:
    if len(set(index)) < 2 or max(index) > 9:
        return None
    return _paint(g, objs, index)


@primitive(weight=0.5)
def holes_color(g: Grid) -> Grid | None:
    """Paint each one-colour object with 1 + its number of holes; a colour map then names the counts."""
    objs = _objs(g)
    return _paint_index(g, objs, [1 + _holes(o) for o in objs]) if len(objs) > 1 else None


@primitive(weight=0.4)
def border_touch_color(g: Grid) -> Grid | None:
    """Paint objects touching the grid's edge 1 and the others 2; a colour map then names them."""
    objs = _objs(g)
    return _paint_index(g, objs, [1 if _touches_border(o, g.shape) else 2 for o in objs]) if len(objs) > 1 else None


@primitive(weight=0.4)
def shape_color(g: Grid) -> Grid | None:
    """Paint objects by their shape's frequency rank (1 = the most common shape); a colour map names them."""
    objs = _objs(g)
    if len(objs) < 2:
        return None
    keys = [(o.grid != 0).tobytes() + bytes(o.grid.shape) for o in objs]
    ranked = sorted(set(keys), key=lambda k: (-keys.count(k), keys.index(k)))
    return _paint_index(g, objs, [ranked.index(k) + 1 for k in keys])


@primitive(weight=0.4)
def erase_border_objs(g: Grid) -> Grid | None:
    """Clear every multicolour object that touches the grid's edge."""
    objs = objects(g, diagonal=True, multicolor=True)
    gone = [o for o in objs if _touches_border(o, g.shape)]
    if not gone or len(gone) == len(objs):
        return None
    return _paint(g, gone, [0] * len(gone), base=g)


# -- painting around objects -------------------------------------------------------------------
@primitive(weight=0.5, colour=True)
def fill_boxes(g: Grid, c: int) -> Grid | None:
    """Paint the background inside each multicolour object's bounding box with ``c``."""
    out = g.copy()
    for o in objects(g, diagonal=True, multicolor=True):
        h, w = o.grid.shape
        box = out[o.top:o.top + h, o.left:o.left + w]
        box[box == 0] = c
    return None if np.array_equal(out, g) else out


@primitive(weight=0.4)
def keep_minor_color(g: Grid) -> Grid | None:
    """Keep only the least common non-background colour."""
    vals, counts = np.unique(g[g != 0], return_counts=True)
    if len(vals) < 2:
        return None
    return np.where(g == vals[np.argmin(counts)], g, 0).astype(np.int8)


@primitive(weight=0.4)
def drop_minor_color(g: Grid) -> Grid | None:
    vals, counts = np.unique(g[g != 0], return_counts=True)
    if len(vals) < 2:
        return None
    return np.where(g == vals[np.argmin(counts)], 0, g).astype(np.int8)


# -- one colour ------------------------------------------------------------------------------
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


# -- objects to a grid ------------------------------------------------------------------------
@primitive("O", "G", weight=0.4)
def obj_most_holes(objs: tuple[Obj, ...]) -> Grid | None:
    return _pick(objs, _holes)


@primitive("O", "G", weight=0.4)
def obj_symmetric(objs: tuple[Obj, ...]) -> Grid | None:
    """The one object equal to its left-right or up-down mirror image."""
    return _pick(objs, lambda o: float(np.array_equal(o.grid, o.grid[:, ::-1]) or np.array_equal(o.grid, o.grid[::-1])))


@primitive("O", "G", weight=0.4)
def obj_asymmetric(objs: tuple[Obj, ...]) -> Grid | None:
    return _pick(objs, lambda o: float(not (np.array_equal(o.grid, o.grid[:, ::-1]) or np.array_equal(o.grid, o.grid[::-1]))))


@primitive("O", "G", weight=0.3)
def obj_top(objs: tuple[Obj, ...]) -> Grid | None:
    return _pick(objs, lambda o: -o.top)


@primitive("O", "G", weight=0.3)
def obj_bottom(objs: tuple[Obj, ...]) -> Grid | None:
    return _pick(objs, lambda o: o.top + o.grid.shape[0])


@primitive("O", "G", weight=0.3)
def obj_left(objs: tuple[Obj, ...]) -> Grid | None:
    return _pick(objs, lambda o: -o.left)


@primitive("O", "G", weight=0.3)
def obj_right(objs: tuple[Obj, ...]) -> Grid | None:
    return _pick(objs, lambda o: o.left + o.grid.shape[1])


@primitive("O", "G", weight=0.3)
def obj_fewest_colors(objs: tuple[Obj, ...]) -> Grid | None:
    return _pick(objs, lambda o: -len(o.colors))


@primitive("O", "G", weight=0.4)
def objs_overlay(objs: tuple[Obj, ...]) -> Grid | None:
    """All objects of one shape of box laid over each other (later ones where earlier ones are background)."""
    if len(objs) < 2 or len({o.grid.shape for o in objs}) != 1:
        return None
    out = objs[0].grid.copy()
    for o in objs[1:]:
        out = np.where(out == 0, o.grid, out).astype(np.int8)
    return out
