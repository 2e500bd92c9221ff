"""The default DSL, built explicitly: which primitives, their families of options, and their order.

The primitive functions are marked (``@primitive``) in the ``_prims_*`` modules, one per concept
(geometry, colour, objects, scenes of objects, masks and pairs of grids, lines and fills, patterns);
nothing registers on import. :data:`DEFAULT_DSL` takes the marked functions of :data:`MODULES`, folds the variants of one
operation into one primitive with a ``choice`` argument (:data:`FAMILIES`: ``gravity(down)`` in place of
``gravity_down``; the old names stay readable as aliases), and orders the result by :data:`ORDER`, the
search's tie-break order. ``build_dsl`` builds the same from other modules or another order, so tests and
benchmarks can make their own DSL (or use :meth:`DSL.without` / :meth:`DSL.only`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any

from . import _prims_colour, _prims_geometry, _prims_lines, _prims_masks, _prims_objects, _prims_patterns, _prims_scene
from ._primitives import DSL, Primitive, family, spec_of

__all__ = ["DEFAULT_DSL", "FAMILIES", "MODULES", "ORDER", "build_dsl", "marked"]

MODULES: tuple[ModuleType, ...] = (_prims_geometry, _prims_colour, _prims_objects, _prims_scene, _prims_masks,
                                   _prims_lines, _prims_patterns)
"""The modules whose marked functions make the default DSL, one per concept (helpers they share are in
``_prims_base``)."""

FAMILIES: Mapping[str, tuple[tuple[str, str], ...]] = {
    "rot": (("90", "rot90"), ("180", "rot180"), ("270", "rot270")),
    "flip": (("h", "flip_h"), ("v", "flip_v"), ("diag", "transpose"), ("anti", "antitranspose")),
    "upscale": (("2", "upscale2"), ("3", "upscale3"), ("ncolors", "upscale_ncolors")),
    "downscale": (("2", "downscale2"), ("3", "downscale3")),
    "tile": (("2x2", "tile2x2"), ("3x3", "tile3x3"), ("1x2", "tile1x2"), ("2x1", "tile2x1"), ("rot4", "tile_rot4"), ("self", "tile_self")),
    "mirror": (("right", "mirror_right"), ("down", "mirror_down"), ("all", "mirror4"), ("left", "mirror_left"), ("up", "mirror_up")),
    "kron": (("self", "self_kron"), ("major", "kron_major")),
    "crop": (("content", "crop_content"), ("frame", "crop_frame"), ("outline", "crop_outline"), ("corners", "crop_corners")),
    "half": (("left", "left_half"), ("right", "right_half"), ("top", "top_half"), ("bottom", "bottom_half")),
    "gravity": (("down", "gravity_down"), ("up", "gravity_up"), ("left", "gravity_left"), ("right", "gravity_right")),
    "sym": (("h", "sym_h"), ("v", "sym_v"), ("rot", "sym_rot"), ("all", "sym_all")),
    "rays": (("v", "rays_v"), ("h", "rays_h"), ("cross", "rays_cross"), ("diag", "rays_diag"), ("down", "rays_down")),
    "drop_color": (("major", "drop_major_color"), ("minor", "drop_minor_color")),
    "denoise": (("noise", "remove_noise"), ("stripes", "denoise_stripes"), ("minor", "denoise_minor")),
    "period": (("tile", "period_tile"), ("square", "period_square"), ("double", "period_double"), ("patch", "period_patch")),
    "objs": (("color", "objs_color"), ("multi", "objs_multi"), ("diag", "objs_diag"), ("multi4", "objs_multi4")),
    "select": (("largest", "obj_largest"), ("smallest", "obj_smallest"), ("biggest_box", "obj_biggest_box"), ("first", "obj_first"), ("last", "obj_last"), ("unique_color", "obj_unique_color"), ("unique_shape", "obj_unique_shape"), ("most_colors", "obj_most_colors"), ("most_holes", "obj_most_holes"), ("symmetric", "obj_symmetric"), ("asymmetric", "obj_asymmetric"), ("top", "obj_top"), ("bottom", "obj_bottom"), ("left", "obj_left"), ("right", "obj_right"), ("fewest_colors", "obj_fewest_colors"), ("unique", "obj_unique"), ("most_common", "obj_most_common"), ("least_symmetric", "obj_least_symmetric")),
    "keep": tuple((n, f"filter_{n}") for n in _prims_scene.PREDICATES),
    "each": tuple((n, f"each_{n}") for n in _prims_scene.TRANSFORMS),
    "split": (("lr", "split_lr"), ("tb", "split_tb"), ("long", "split_long")),
    "shift": (("down", "shift_down"), ("up", "shift_up"), ("right", "shift_right"), ("left", "shift_left")),
    "inpaint": (("sym", "inpaint_sym"), ("crop", "inpaint_crop")),
    "connect": (("rows", "connect_rows"), ("cols", "connect_cols"), ("diag", "connect_diag")),
    "colors": (("by_count", "colors_by_count"), ("in_order", "colors_in_order"), ("histogram", "colors_histogram")),
    "pull": (("same", "pull_to_same"), ("shapes", "pull_to_shapes")),
    "stamp": (("template", "stamp_template"), ("move", "stamp_template_move")),
}
"""Primitives with a choice argument: name -> (option, marked function's name) in the options' order."""

ORDER: tuple[str, ...] = (
    "rot", "flip", "upscale", "downscale", "tile", "mirror", "kron", "crop", "half", "dedupe", "gravity", "sym",
    "connect_pairs", "rays", "continue_pattern", "drop_color", "denoise", "size_rank", "period",
    "fill_enclosed", "objs", "select", "keep", "each", "recolor", "paint", "paint_over", "split", "p_and",
    "p_or", "p_xor", "p_overlay", "shift", "fill_boxes", "pad_edge", "objs_overlay", "inpaint", "connect",
    "connect_with", "slide_major", "color_boxes", "rays_to_largest", "split_squares", "recolor_nearest",
    "colors", "cells_row", "obj_most_color", "obj_marked", "cells_any", "overlay_parts", "mask_by_key",
    "shape_fill_rest", "kron_color", "swap_colors", "pull", "stamp", "recolor_by_lines", "size_color4",
    "sym_about_centre", "keep_solid", "cells_fill", "fill_empty_lines", "diag_pattern", "flood_from",
    "fill_square_holes", "fill_empty_squares", "match_framed_color", "bounce_ray", "extend_diag_tails",
    "cells_any_major", "cells_most", "flag_mirror", "fit_two",
)
"""The default DSL's primitives in the search's tie-break order."""


def marked(modules: Sequence[ModuleType]) -> dict[str, Callable[..., Any]]:
    """The functions marked ``@primitive`` in ``modules``, by name (defined there, not imported)."""
    out: dict[str, Callable[..., Any]] = {}
    for m in modules:
        for name, fn in vars(m).items():
            if callable(fn) and hasattr(fn, "_primitive_spec") and getattr(fn, "__module__", "") == m.__name__:
                if name in out:
                    raise ValueError(f"primitive {name!r} is marked in two modules")
                out[name] = fn
    return out


def build_dsl(modules: Sequence[ModuleType] = MODULES, families: Mapping[str, Sequence[tuple[str, str]]] = FAMILIES,
              order: Sequence[str] = ORDER) -> DSL:
    """A DSL of the marked functions in ``modules``, ``families`` folded, in ``order``.

    Every marked function must be used once (as a primitive or an option) and every name in ``order`` must
    exist: a primitive left out by mistake is an error, not a silent gap.
    """
    fns = marked(modules)
    made: dict[str, Primitive] = {}
    used: set[str] = set()
    for name, variants in families.items():
        made[name] = family(name, [(opt, fns[v]) for opt, v in variants])
        used |= {v for _, v in variants}
    for name, fn in fns.items():
        if name not in used:
            if name in made:
                raise ValueError(f"{name!r} is both a family and a marked function")
            made[name] = spec_of(fn)
    missing, extra = set(order) - set(made), set(made) - set(order)
    if missing or extra:
        raise ValueError(f"the order names unknown primitives {sorted(missing)} or leaves out {sorted(extra)}")
    aliases = {v: (name, opt) for name, variants in families.items() for opt, v in variants}
    return DSL(tuple(made[n] for n in order), aliases)


DEFAULT_DSL = build_dsl()
"""The DSL the solver searches unless given another (``dsl=``)."""
