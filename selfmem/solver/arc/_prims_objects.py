"""Object primitives: splits into objects (a :class:`~._prims_scene.Scene`, by colour or multicolour, 4-
or 8-connected), the selection of one object by a predicate (``select(largest)``, ...), the most-coloured
or marked object, the overlay of equal boxes, strips of squares and cells, and templates stamped on
marks.

Each function is marked with :func:`~._primitives.primitive`; :mod:`._registry` folds variants into
primitives with options and fixes the order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import ndimage

from ._grid import CROSS, Grid, Obj, objects
from ._primitives import primitive
from ._prims_base import _blocks, _colours, _holes, _shape_key, _symmetric
from ._prims_scene import scene


@primitive("G", "O", weight=0.8)
def objs_color(g: Grid) -> tuple[Obj, ...] | None:
    """Single-colour 4-connected objects (a :class:`~._prims_scene.Scene`: they know their grid)."""
    return scene(objects(g), g)


@primitive("G", "O", weight=1.0)
def objs_multi(g: Grid) -> tuple[Obj, ...] | None:
    """Multicolour 8-connected objects."""
    return scene(objects(g, diagonal=True, multicolor=True), g)


def _pick(objs: tuple[Obj, ...], key: Callable[[Obj], Any]) -> Grid | None:
    """The one object with the highest ``key`` (None when two share it)."""
    if len(objs) < 2:
        return None
    scores = [key(o) for o in objs]
    best = max(scores)
    if scores.count(best) > 1:
        return None
    return objs[scores.index(best)].grid


@primitive("O", "G", weight=1.0)
def obj_largest(objs: tuple[Obj, ...]) -> Grid | None:
    return _pick(objs, lambda o: o.size)


@primitive("O", "G", weight=0.8)
def obj_smallest(objs: tuple[Obj, ...]) -> Grid | None:
    return _pick(objs, lambda o: -o.size)


@primitive("O", "G", weight=0.5)
def obj_biggest_box(objs: tuple[Obj, ...]) -> Grid | None:
    return _pick(objs, lambda o: o.grid.size)


@primitive("O", "G", weight=0.4)
def obj_first(objs: tuple[Obj, ...]) -> Grid | None:
    return objs[0].grid if len(objs) > 1 else None


@primitive("O", "G", weight=0.4)
def obj_last(objs: tuple[Obj, ...]) -> Grid | None:
    return objs[-1].grid if len(objs) > 1 else None


@primitive("O", "G", weight=0.6)
def obj_unique_color(objs: tuple[Obj, ...]) -> Grid | None:
    """The object whose main colour no other object has."""
    firsts = [o.colors[0] for o in objs]
    lone = [o for o in objs if firsts.count(o.colors[0]) == 1]
    return lone[0].grid if len(objs) > 2 and len(lone) == 1 else None


@primitive("O", "G", weight=0.6)
def obj_unique_shape(objs: tuple[Obj, ...]) -> Grid | None:
    """The object whose shape (mask) no other object has."""
    shapes = [_shape_key(o) for o in objs]
    lone = [o for o, s in zip(objs, shapes) if shapes.count(s) == 1]
    return lone[0].grid if len(objs) > 2 and len(lone) == 1 else None


@primitive("O", "G", weight=0.5)
def obj_most_colors(objs: tuple[Obj, ...]) -> Grid | None:
    return _pick(objs, lambda o: len(o.colors))


@primitive("O", "G", weight=0.4)
def obj_most_holes(objs: tuple[Obj, ...]) -> Grid | None:
    return _pick(objs, _holes)


@primitive("O", "G", weight=0.4)
def obj_symmetric(objs: tuple[Obj, ...]) -> Grid | None:
    """The one object equal to its left-right or up-down mirror image."""
    return _pick(objs, lambda o: float(_symmetric(o)))


@primitive("O", "G", weight=0.4)
def obj_asymmetric(objs: tuple[Obj, ...]) -> Grid | None:
    return _pick(objs, lambda o: float(not _symmetric(o)))


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


def _even_blocks(g: Grid, rows: int, cols: int) -> tuple[Obj, ...] | None:
    """The grid cut into ``rows`` x ``cols`` equal blocks, as objects (reading order)."""
    h, w = g.shape
    if h % rows or w % cols or h // rows < 1 or w // cols < 1:
        return None
    bh, bw = h // rows, w // cols
    out = []
    for r in range(rows):
        for c in range(cols):
            cell = g[r * bh:(r + 1) * bh, c * bw:(c + 1) * bw]
            vals, counts = np.unique(cell[cell != 0], return_counts=True)
            colors = tuple(int(v) for v in vals[np.argsort(-counts, kind="stable")])
            out.append(Obj(cell.copy(), r * bh, c * bw, int(np.count_nonzero(cell)), colors))
    return tuple(out)


@primitive("G", "O", weight=0.3)
def split_squares(g: Grid) -> tuple[Obj, ...] | None:
    """A grid of k squares side by side (or stacked), as k objects."""
    h, w = g.shape
    if h > w and h % w == 0:
        return _even_blocks(g, h // w, 1)
    if w > h and w % h == 0:
        return _even_blocks(g, 1, w // h)
    return None


def _content(o: Obj) -> bytes:
    return o.grid.tobytes() + bytes(o.grid.shape)


@primitive("G", "O", weight=0.4)
def objs_diag(g: Grid) -> tuple[Obj, ...] | None:
    """Single-colour 8-connected objects."""
    return scene(objects(g, diagonal=True), g)


@primitive("G", "O", weight=0.3)
def objs_multi4(g: Grid) -> tuple[Obj, ...] | None:
    """Multicolour 4-connected objects."""
    return scene(objects(g, multicolor=True), g)


@primitive("O", "G", weight=0.4, colour=True)
def obj_most_color(objs: tuple[Obj, ...], c: int) -> Grid | None:
    """The object with the most cells of colour ``c``."""
    return _pick(objs, lambda o: int((o.grid == c).sum()))


@primitive("O", "G", weight=0.4)
def obj_unique(objs: tuple[Obj, ...]) -> Grid | None:
    """The one object whose content (shape and colours) no other object has."""
    if len(objs) < 3:
        return None
    keys = [_content(o) for o in objs]
    lone = [o for o, k in zip(objs, keys) if keys.count(k) == 1]
    return lone[0].grid if len(lone) == 1 else None


@primitive("O", "G", weight=0.3)
def obj_most_common(objs: tuple[Obj, ...]) -> Grid | None:
    """The object whose content (shape and colours) occurs most often."""
    if len(objs) < 3:
        return None
    keys = [_content(o) for o in objs]
    counts = {k: keys.count(k) for k in keys}
    best = max(counts.values())
    top = [k for k, v in counts.items() if v == best]
    return objs[keys.index(top[0])].grid if best >= 2 and len(top) == 1 else None


def _symmetries(a: Grid) -> int:
    n = int(np.array_equal(a, a[:, ::-1])) + int(np.array_equal(a, a[::-1])) + int(np.array_equal(a, a[::-1, ::-1]))
    if a.shape[0] == a.shape[1]:
        n += int(np.array_equal(a, a.T)) + int(np.array_equal(a, a[::-1, ::-1].T))
    return n


@primitive("O", "G", weight=0.3)
def obj_least_symmetric(objs: tuple[Obj, ...]) -> Grid | None:
    """The object with the fewest symmetries (mirrors, half turn, both diagonals)."""
    return _pick(objs, lambda o: -_symmetries(o.grid))


@primitive(weight=0.3)
def obj_marked(g: Grid) -> Grid | None:
    """The 8-connected object holding the grid's one single-cell colour (a marker), cropped without the
    marker; a marker inside the object's box takes the object's main colour."""
    vals, counts = np.unique(g[g != 0], return_counts=True)
    singles = [int(v) for v, n in zip(vals, counts) if n == 1]
    if len(singles) != 1:
        return None
    marker = singles[0]
    (my,), (mx,) = np.nonzero(g == marker)
    labels, _ = ndimage.label(g != 0, structure=np.ones((3, 3)))
    rest = (labels == labels[my, mx]) & (g != marker)
    if not rest.any():
        return None
    ys, xs = np.nonzero(rest)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    box = np.where(rest[y0:y1, x0:x1], g[y0:y1, x0:x1], 0).astype(np.int8)
    if y0 <= my < y1 and x0 <= mx < x1:
        box[my - y0, mx - x0] = _colours(box)[0]
    return box


@primitive("G", "O", weight=0.4)
def cells_any(g: Grid) -> tuple[Obj, ...] | None:
    """The cells of a grid divided by full lines of one colour, background lines too."""
    blocks = _blocks(g)
    if blocks is None:
        return None
    return tuple(Obj(cell.copy(), t, left, int(np.count_nonzero(cell)), _colours(cell))
                 for row in blocks for t, left, cell in row)


def _stamp(g: Grid, move: bool) -> Grid | None:
    labels, _ = ndimage.label(g != 0, CROSS)
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
