"""The transformation embedding: a fixed-size vector of *how* inputs become outputs.

This is the ARC solver's own view of a task (or of an experience, "these inputs -> a program's
outputs"): shape ratios, colour counts and histogram changes, how a colour map explains the change,
the changed-cell mask, object counts, symmetry, tiling and containment, geometric relations. Each
feature is in [0, 1] (or [-1, 1]); a set of pairs is the mean over its pairs, L2-normalised. Colour
identities are left out on purpose (they rarely transfer between tasks); what is kept is the structure
of the change.

``transformation_features(pairs)`` is what :class:`~selfmem.solver.arc.ARCSolver` passes as
``own_embedding=`` when it records a task, a solution or an experience, and what it compares to find
the experiences nearest to a new task.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from ..._errors import InvalidInputError
from ._grid import CROSS, Grid

__all__ = ["transformation_features", "FEATURE_NAMES", "FEATURE_DIM"]

_GEOM = (("rot90", lambda g: np.rot90(g, 1)), ("rot180", lambda g: np.rot90(g, 2)),
         ("rot270", lambda g: np.rot90(g, 3)), ("flip_h", lambda g: g[:, ::-1]), ("flip_v", lambda g: g[::-1]),
         ("transpose", lambda g: g.T))

FEATURE_NAMES: tuple[str, ...] = (
    "same_shape", "log_h_ratio+", "log_h_ratio-", "log_w_ratio+", "log_w_ratio-", "area_larger", "area_smaller",
    "multiple_of_input", "divides_input", "transposed_shape", "output_1x1", "output_fixed_small",
    "n_colours_in", "n_colours_out", "colours_added", "colours_removed", "colours_subset", "out_single_colour",
    "bg_in", "bg_out", "bg_more", "bg_less", "cells_same_count", "hist_sorted_same",
    "changed_frac", "changed_from_bg", "changed_to_bg", "changed_recolour", "colour_map_exact", "changed_on_border",
    "changed_bbox_frac", "few_changed", "many_changed",
    "sym_h_out", "sym_v_out", "sym_rot_out", "sym_h_in", "sym_v_in", "sym_gain",
    *(f"geom_{n}" for n, _ in _GEOM),
    "out_in_input", "in_in_output", "out_tiles_input", "out_tiles_flips", "rows_fewer", "cols_fewer",
    "objs_in", "objs_out", "objs_more", "objs_fewer", "objs_same", "largest_obj_in", "out_is_object",
    "dominant_in_frac", "dominant_out_frac", "nonbg_ratio+", "nonbg_ratio-", "gravity_like",
)
FEATURE_DIM = len(FEATURE_NAMES)


def _objects(g: Grid) -> tuple[int, float]:
    """Connected non-background components (4-connected, any colour): count and largest share of cells."""
    lab, n = ndimage.label(g != 0, CROSS)
    if n == 0:
        return 0, 0.0
    sizes = np.bincount(lab.ravel())[1:]
    return n, float(sizes.max()) / g.size


def _contains(big: Grid, small: Grid) -> bool:
    """``small`` appears as a sub-grid of ``big`` (bounded work: grids of at most 30 x 30)."""
    H, W = big.shape
    h, w = small.shape
    if h > H or w > W or (h, w) == (H, W):
        return False
    win = np.lib.stride_tricks.sliding_window_view(big, (h, w))
    return bool((win == small).all(axis=(2, 3)).any())


def _tiles(out: Grid, g: Grid, flips: bool) -> bool:
    """``out`` is made of copies of ``g`` (or of its flips) on a grid of blocks."""
    H, W = out.shape
    h, w = g.shape
    if H % h or W % w or (H, W) == (h, w):
        return False
    variants = [g] + ([g[:, ::-1], g[::-1], g[::-1, ::-1]] if flips else [])
    for r in range(0, H, h):
        for c in range(0, W, w):
            block = out[r:r + h, c:c + w]
            if not any(np.array_equal(block, v) for v in variants):
                return False
    return True


def _ratio(x: float) -> tuple[float, float]:
    v = float(np.clip(np.log(x) / np.log(4), -1, 1))
    return max(v, 0.0), max(-v, 0.0)


def _dominant(g: Grid) -> float:
    return float(np.bincount(g.ravel(), minlength=10).max()) / g.size


def _pair(i: Grid, o: Grid) -> np.ndarray:
    f: dict[str, float] = {}
    same = i.shape == o.shape
    f["same_shape"] = float(same)
    f["log_h_ratio+"], f["log_h_ratio-"] = _ratio(o.shape[0] / i.shape[0])
    f["log_w_ratio+"], f["log_w_ratio-"] = _ratio(o.shape[1] / i.shape[1])
    f["area_larger"], f["area_smaller"] = float(o.size > i.size), float(o.size < i.size)
    f["multiple_of_input"] = float(not same and o.shape[0] % i.shape[0] == 0 and o.shape[1] % i.shape[1] == 0)
    f["divides_input"] = float(not same and i.shape[0] % o.shape[0] == 0 and i.shape[1] % o.shape[1] == 0)
    f["transposed_shape"] = float(o.shape == i.shape[::-1] and i.shape[0] != i.shape[1])
    f["output_1x1"] = float(o.size == 1)
    f["output_fixed_small"] = float(max(o.shape) <= 3)
    ci, co = set(np.unique(i).tolist()), set(np.unique(o).tolist())
    f["n_colours_in"], f["n_colours_out"] = len(ci) / 10, len(co) / 10
    f["colours_added"], f["colours_removed"] = float(bool(co - ci)), float(bool(ci - co))
    f["colours_subset"] = float(co <= ci)
    f["out_single_colour"] = float(len(co) == 1)
    bi, bo = float(np.mean(i == 0)), float(np.mean(o == 0))
    f["bg_in"], f["bg_out"] = bi, bo
    f["bg_more"], f["bg_less"] = float(bo > bi + 1e-9), float(bo < bi - 1e-9)
    hi, ho = np.bincount(i.ravel(), minlength=10), np.bincount(o.ravel(), minlength=10)
    f["cells_same_count"] = float(np.array_equal(hi, ho))
    f["hist_sorted_same"] = float(np.array_equal(np.sort(hi / i.size), np.sort(ho / o.size)))
    if same:
        ch = i != o
        frac = float(ch.mean())
        f["changed_frac"] = frac
        if ch.any():
            f["changed_from_bg"] = float(np.mean(i[ch] == 0))
            f["changed_to_bg"] = float(np.mean(o[ch] == 0))
            pairs = {(int(a), int(b)) for a, b in zip(i.ravel(), o.ravel())}
            f["colour_map_exact"] = float(len({a for a, _ in pairs}) == len(pairs))
            f["changed_recolour"] = float(np.mean(i[ch] != 0) * np.mean(o[ch] != 0))
            border = np.zeros_like(ch)
            border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
            f["changed_on_border"] = float(np.mean(border[ch]))
            rows, cols = np.nonzero(ch)
            f["changed_bbox_frac"] = float((np.ptp(rows) + 1) * (np.ptp(cols) + 1)) / ch.size
        f["few_changed"], f["many_changed"] = float(0 < frac <= 0.1), float(frac > 0.3)
        nbi, nbo = (hi[1:] > 0).sum(), (ho[1:] > 0).sum()
        f["gravity_like"] = float(np.array_equal(hi, ho) and frac > 0 and nbi == nbo)
    f["sym_h_out"], f["sym_v_out"] = float(np.array_equal(o, o[:, ::-1])), float(np.array_equal(o, o[::-1]))
    f["sym_rot_out"] = float(np.array_equal(o, np.rot90(o, 2)))
    f["sym_h_in"], f["sym_v_in"] = float(np.array_equal(i, i[:, ::-1])), float(np.array_equal(i, i[::-1]))
    f["sym_gain"] = float(f["sym_h_out"] + f["sym_v_out"] > f["sym_h_in"] + f["sym_v_in"])
    for name, fn in _GEOM:
        t = fn(i)
        f[f"geom_{name}"] = float(t.shape == o.shape and np.array_equal(t, o) and not np.array_equal(i, o))
    f["out_in_input"] = float(_contains(i, o))
    f["in_in_output"] = float(_contains(o, i))
    f["out_tiles_input"] = float(_tiles(o, i, False))
    f["out_tiles_flips"] = float(_tiles(o, i, True))
    f["rows_fewer"] = float(len({r.tobytes() for r in o}) < len({r.tobytes() for r in i}))
    f["cols_fewer"] = float(len({c.tobytes() for c in o.T}) < len({c.tobytes() for c in i.T}))
    ni, li = _objects(i)
    no, _ = _objects(o)
    f["objs_in"], f["objs_out"] = min(ni, 20) / 20, min(no, 20) / 20
    f["objs_more"], f["objs_fewer"], f["objs_same"] = float(no > ni), float(no < ni), float(no == ni)
    f["largest_obj_in"] = li
    f["out_is_object"] = float(o.size < i.size and no == 1 and f["out_in_input"] > 0)
    f["dominant_in_frac"], f["dominant_out_frac"] = _dominant(i), _dominant(o)
    nz_i, nz_o = max(int((i != 0).sum()), 1), max(int((o != 0).sum()), 1)
    f["nonbg_ratio+"], f["nonbg_ratio-"] = _ratio(nz_o / nz_i)
    return np.array([f.get(n, 0.0) for n in FEATURE_NAMES], dtype=np.float32)


def transformation_features(pairs: Sequence[tuple[Grid, Grid]], *, normalize: bool = True) -> np.ndarray:
    """The transformation embedding of input/output pairs, shape ``(FEATURE_DIM,)``.

    Parameters
    ----------
    pairs : sequence of (Grid, Grid)
        Input/output pairs (a task's train pairs, or inputs with a program's outputs).
    normalize : bool
        L2-normalise the mean over pairs (the vector the memory stores as the own view).

    Examples
    --------
    >>> g = np.array([[1, 0], [0, 0]], np.int8)
    >>> v = transformation_features([(g, g.T)])
    >>> v.shape == (FEATURE_DIM,), round(float(np.linalg.norm(v)), 5)
    (True, 1.0)
    """
    if not pairs:
        raise InvalidInputError("transformation_features needs at least one (input, output) pair")
    v = np.mean([_pair(np.asarray(i), np.asarray(o)) for i, o in pairs], axis=0).astype(np.float32)
    if normalize:
        n = float(np.linalg.norm(v))
        v = v / n if n > 0 else v
    return v
