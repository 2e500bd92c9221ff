"""Every DSL primitive on a small hand-worked example, and the properties all of them keep."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from selfmem import InvalidInputError
from selfmem.solver.arc import PRIMITIVES, Program, run_program
from selfmem.solver.arc._dsl import apply_colormap, candidate_colors, fit_colormap
from selfmem.solver.arc._grid import Obj, objects
from selfmem.solver.arc._primitives import spec_of
from selfmem.solver.arc._registry import MODULES, marked

FNS = marked(MODULES)
"""Every marked primitive function (a family's options included), by its own name."""


def G(*rows: str) -> np.ndarray:
    return np.array([[int(c) for c in r] for r in rows], np.int8)


def O(  # noqa: E743 (a short name these tests use for "objects of")
        *grids: np.ndarray, sizes=None) -> tuple[Obj, ...]:
    """Objects from cropped grids (positions in reading order)."""
    out = []
    for i, g in enumerate(grids):
        vals, counts = np.unique(g[g != 0], return_counts=True)
        colors = tuple(int(v) for v in vals[np.argsort(-counts, kind="stable")])
        out.append(Obj(g, i, i, int(np.count_nonzero(g)), colors))
    return tuple(out)


A = G("12", "30")
# marked function's name: (input, colour argument or None, expected output or None when it does not apply)
CASES = {
    "rot90": (A, None, G("20", "13")),
    "rot180": (A, None, G("03", "21")),
    "rot270": (A, None, G("31", "02")),
    "flip_h": (A, None, G("21", "03")),
    "flip_v": (A, None, G("30", "12")),
    "transpose": (A, None, G("13", "20")),
    "antitranspose": (A, None, G("02", "31")),
    "upscale2": (G("12"), None, G("1122", "1122")),
    "upscale3": (G("1"), None, G("111", "111", "111")),
    "downscale2": (G("1122", "1122"), None, G("12")),
    "downscale3": (G("111222", "111222", "111222"), None, G("12")),
    "tile2x2": (G("12"), None, G("1212", "1212")),
    "tile3x3": (G("1"), None, G("111", "111", "111")),
    "tile1x2": (G("12"), None, G("1212")),
    "tile2x1": (G("12"), None, G("12", "12")),
    "mirror_right": (G("12"), None, G("1221")),
    "mirror_down": (G("1", "2"), None, G("1", "2", "2", "1")),
    "mirror4": (G("12"), None, G("1221", "1221")),
    "self_kron": (G("10", "01"), None, G("1000", "0100", "0010", "0001")),
    "crop_content": (G("000", "020", "030"), None, G("2", "3")),
    "left_half": (G("12345"), None, G("12")),
    "right_half": (G("12345"), None, G("45")),
    "top_half": (G("1", "2", "3", "4"), None, G("1", "2")),
    "bottom_half": (G("1", "2", "3", "4"), None, G("3", "4")),
    "dedupe": (G("1122", "1122", "3344"), None, G("12", "34")),
    "gravity_down": (G("10", "00", "02"), None, G("00", "00", "12")),
    "gravity_up": (G("10", "00", "02"), None, G("12", "00", "00")),
    "gravity_left": (G("010", "002"), None, G("100", "200")),
    "gravity_right": (G("100", "020"), None, G("001", "002")),
    "sym_h": (G("120", "300"), None, G("121", "303")),
    "sym_v": (G("12", "00"), None, G("12", "12")),
    "sym_rot": (G("12", "00"), None, G("12", "21")),
    "sym_all": (G("100", "000", "000"), None, G("101", "000", "101")),
    "fill_enclosed": (G("111", "101", "111"), 4, G("111", "141", "111")),
    "connect_pairs": (G("10001", "00000", "20000"), None, G("11111", "00000", "20000")),
    "rays_v": (G("000", "010", "000"), None, G("010", "010", "010")),
    "rays_h": (G("000", "010", "000"), None, G("000", "111", "000")),
    "rays_cross": (G("000", "020", "000"), None, G("020", "222", "020")),
    "rays_diag": (G("000", "030", "000"), None, G("303", "030", "303")),
    "rays_down": (G("010", "000", "000"), None, G("010", "010", "010")),
    "continue_pattern": (G("1212", "2100", "1200"), None, G("1212", "2121", "1212")),
    "period_tile": (G("1212", "3434", "1212"), None, G("12", "34")),
    "drop_major_color": (G("1220", "0020"), None, G("1000", "0000")),
    "remove_noise": (G("1001", "1000", "0002"), None, G("1000", "1000", "0000")),
    "size_rank": (G("1100", "1100", "0003"), None, G("1100", "1100", "0002")),
    "objs_color": (G("110", "002"), None, O(G("11"), G("2"))),
    "objs_multi": (G("120", "000", "003"), None, O(G("12"), G("3"))),
    "obj_largest": (O(G("11"), G("2")), None, G("11")),
    "obj_smallest": (O(G("11"), G("2")), None, G("2")),
    "obj_biggest_box": (O(G("10", "01"), G("222")), None, G("10", "01")),
    "obj_first": (O(G("11"), G("2")), None, G("11")),
    "obj_last": (O(G("11"), G("2")), None, G("2")),
    "obj_unique_color": (O(G("1"), G("1"), G("2")), None, G("2")),
    "obj_unique_shape": (O(G("11"), G("22"), G("3", "3")), None, G("3", "3")),
    "obj_most_colors": (O(G("11"), G("23")), None, G("23")),
    "split_lr": (G("10501", "01500"), None, (G("10", "01"), G("01", "00"))),
    "split_tb": (G("1", "2", "3", "4"), None, (G("1", "2"), G("3", "4"))),
    "p_and": ((G("11"), G("01")), 6, G("06")),
    "p_or": ((G("10"), G("00")), 6, G("60")),
    "p_xor": ((G("11"), G("01")), 6, G("60")),
    "p_overlay": ((G("10"), G("22")), None, G("12")),
    "shift_down": (G("12", "00"), None, G("00", "12")),
    "shift_up": (G("00", "12"), None, G("12", "00")),
    "shift_right": (G("10", "20"), None, G("01", "02")),
    "shift_left": (G("01", "02"), None, G("10", "20")),
    "crop_frame": (G("00000", "02220", "02120", "02220"), None, G("1")),
    "tile_rot4": (G("12", "34"), None, G("1231", "3442", "2443", "1321")),
    "mirror_left": (G("12"), None, G("2112")),
    "mirror_up": (G("1", "2"), None, G("2", "1", "1", "2")),
    "upscale_ncolors": (G("12"), None, G("1122", "1122")),
    "tile_self": (G("12"), None, G("1212")),
    "fill_boxes": (G("100", "010", "000"), 4, G("140", "410", "000")),
    "drop_minor_color": (G("1120", "0010"), None, G("1100", "0010")),
    "kron_major": (G("10", "00"), None, G("0010", "0000", "1010", "0000")),
    "pad_edge": (G("12", "34"), None, G("0120", "1122", "3344", "0340")),
    "obj_most_holes": (O(G("111", "101", "111"), G("22")), None, G("111", "101", "111")),
    "obj_symmetric": (O(G("11", "11"), G("10", "11")), None, G("11", "11")),
    "obj_asymmetric": (O(G("11", "11"), G("10", "11")), None, G("10", "11")),
    "obj_top": (O(G("1"), G("2")), None, G("1")),
    "obj_bottom": (O(G("1"), G("2")), None, G("2")),
    "obj_left": (O(G("1"), G("2")), None, G("1")),
    "obj_right": (O(G("1"), G("2")), None, G("2")),
    "obj_fewest_colors": (O(G("11"), G("23")), None, G("11")),
    "objs_overlay": (O(G("10"), G("02")), None, G("12")),
    "inpaint_sym": (G("123321", "557764", "789987"), None, G("123321", "467764", "789987")),
    "inpaint_crop": (G("123321", "557764", "789987"), None, G("46")),
    "connect_rows": (G("1001", "0000", "1000"), None, G("1111", "0000", "1000")),
    "connect_cols": (G("1001", "0000", "1000"), None, G("1001", "1000", "1000")),
    "connect_diag": (G("100", "000", "001"), None, G("100", "010", "001")),
    "connect_with": (G("101", "000"), 3, G("131", "000")),
    "slide_major": (G("110", "000", "000", "020"), None, G("000", "000", "110", "020")),
    "color_boxes": (G("1000", "0010", "2000"), None, G("1110", "1110", "2000")),
    "rays_to_largest": (G("00000", "01100", "01102", "00000"), None, G("00000", "01100", "01122", "00000")),
    "split_squares": (G("12", "34", "56", "78"), None, O(G("12", "34"), G("56", "78"))),
    "recolor_nearest": (G("1103", "0000", "2200"), None, G("1101", "0000", "2200")),
    # issue 24, third round: lists of colours, a picture drawn with a shape, a legend's colour
    "colors_by_count": (G("12220", "00113"), None, G("1", "2", "3")),
    "colors_in_order": (G("1122", "1133"), None, G("123")),
    "cells_row": (G("102", "030"), None, G("123")),
    "split_long": (G("1", "2", "3", "4"), None, (G("1", "2"), G("3", "4"))),
    "objs_diag": (G("10", "01"), None, O(G("10", "01"))),
    "objs_multi4": (G("12", "00", "03"), None, O(G("12"), G("3"))),
    "obj_most_color": (O(G("12"), G("22")), 2, G("22")),
    "obj_unique": (O(G("1"), G("1"), G("2")), None, G("2")),
    "obj_most_common": (O(G("1"), G("1"), G("22")), None, G("1")),
    "obj_least_symmetric": (O(G("11", "11"), G("10", "11")), None, G("10", "11")),
    "obj_marked": (G("0000", "0110", "0120", "0000"), None, G("11", "11")),
    "cells_any": (G("10", "00", "02"), None, O(G("10"), G("02"))),
    "overlay_parts": (G("10522", "01500"), None, G("12", "01")),
    "mask_by_key": (G("1010502", "0101530"), None, G("0020", "0300")),
    "shape_fill_rest": (G("1100", "1100", "0000", "0002"), None, G("2")),
    "kron_color": (G("10", "01"), 1, G("1000", "0100", "0010", "0001")),
    "crop_outline": (G("00000", "01110", "01010", "01110", "00000"), None, G("111", "101", "111")),
    "crop_corners": (G("10001", "02000", "00000", "10001"), None, G("100", "000")),
    "swap_colors": (G("1202"), None, G("2101")),
    # issue 24, third round (moves): cells pulled, templates, recolouring, symmetry, noise, filling
    "pull_to_same": (G("01000", "00000", "00000", "01110"), None, G("00000", "00000", "01000", "01110")),
    "pull_to_shapes": (G("01000", "00000", "00000", "02220"), None, G("00000", "00000", "01000", "02220")),
    "stamp_template": (G("121000", "000000", "000030"), None, G("121000", "000000", "000121")),
    "stamp_template_move": (G("121000", "000000", "000030"), None, G("000000", "000000", "000121")),
    "recolor_by_lines": (G("1102", "0000"), None, G("2202", "0000")),
    "size_color4": (G("1102", "0000", "3000"), None, G("2201", "0000", "1000")),
    "sym_about_centre": (G("11000", "00000", "00300", "00000", "00000"), None,
                         G("11011", "00000", "00300", "00000", "11011")),
    "keep_solid": (G("110", "111", "001"), None, G("110", "110", "000")),
    "denoise_stripes": (G("111", "121", "222"), None, G("111", "111", "222")),
    "denoise_minor": (G("1111", "1311", "1111"), None, G("1111", "1111", "1111")),
    "cells_fill": (G("10502", "00500"), None, G("11522", "11522")),
    "fill_empty_lines": (G("100", "000", "001"), 4, G("140", "444", "041")),
    # issue 24, fourth round: patterns carried on, regions, lines, divided grids, summaries
    "period_square": (G("1111", "2222", "1111"), None, G("1111", "2222", "1111", "2222")),
    "period_double": (G("12", "12", "12"), None, G("12", "12", "12", "12", "12", "12")),
    "period_patch": (G("1212", "2121", "1200", "2100"), None, G("12", "21")),
    "diag_pattern": (G("123", "201", "010"), None, G("123", "231", "312")),
    "flood_from": (G("000", "111", "020"), 2, G("000", "111", "222")),
    "fill_square_holes": (G("111111", "100101", "111111"), 2, G("111111", "100121", "111111")),
    "fill_empty_squares": (G("1000", "1000", "1111", "1111"), 3, G("1330", "1330", "1111", "1111")),
    "match_framed_color": (G("55500000", "53501000", "55500000"), None, G("55500000", "53503000", "55500000")),
    "bounce_ray": (G("00", "00", "10"), None, G("10", "01", "10")),
    "extend_diag_tails": (G("00000", "00000", "00100", "00011", "00011"), None,
                          G("10000", "01000", "00100", "00011", "00011")),
    "cells_any_major": (G("11022", "12022", "00000", "33044"), None, G("12", "34")),
    "cells_most": (G("11022", "12022", "00000", "33044"), None, G("11", "00")),
    "flag_mirror": (G("121"), None, G("1")),
    "colors_histogram": (G("1122", "1300"), None, G("123", "120", "100")),
    "fit_two": (G("1100", "1000", "0002"), None, G("11", "12")),
}


def _same(a, b) -> bool:
    if isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and a.shape == b.shape and np.array_equal(a, b)
    if isinstance(b, tuple) and b and isinstance(b[0], Obj):
        return len(a) == len(b) and all(_same(x.grid, y.grid) for x, y in zip(a, b))
    if isinstance(b, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def test_every_primitive_function_has_a_case_and_the_readme_states_the_count():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert f"(`PRIMITIVES`, {len(PRIMITIVES)}," in readme, "README's DSL bullet states another primitive count"
    assert len(PRIMITIVES) >= 40
    assert set(CASES) <= set(FNS), set(CASES) - set(FNS)


@pytest.mark.parametrize("name", sorted(CASES))
def test_primitive(name):
    value, arg, expected = CASES[name]
    out = FNS[name](value) if arg is None else FNS[name](value, arg)
    assert _same(out, expected), f"{name}: got {out!r}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_case_runs_as_its_step_of_the_dsl(name):
    """A family's option applies the function it replaced: ``gravity(down)`` is ``gravity_down``."""
    value, arg, expected = CASES[name]
    prim_name, option = PRIMITIVES.aliases.get(name, (name, None))
    prim = PRIMITIVES[prim_name]
    out = prim.fn(value, option if option is not None else arg) if prim.arg else prim.fn(value)
    assert _same(out, expected), f"{name} as {prim_name}({option}): got {out!r}"


@pytest.mark.parametrize("name", ["crop_content", "downscale2", "obj_largest", "fill_enclosed", "dedupe", "split_lr",
                                  "continue_pattern"])
def test_primitive_that_does_not_apply_returns_none(name):
    dull = {"crop_content": G("12", "34"), "downscale2": G("123"), "obj_largest": O(G("1"), G("2")),
            "fill_enclosed": G("11", "11"), "dedupe": G("12", "21"),
            "split_lr": G("123", "456", "789")[:, :1], "continue_pattern": G("12", "34")}
    fn = FNS[name]
    assert (fn(dull[name], 1) if spec_of(fn).colour_arg else fn(dull[name])) is None


grids = arrays(np.int8, st.tuples(st.integers(1, 6), st.integers(1, 6)), elements=st.integers(0, 4))


@settings(max_examples=30, deadline=None)
@given(grids)
def test_grid_primitives_are_pure_and_typed(g):
    before = g.copy()
    for prim in map(spec_of, FNS.values()):
        if prim.src != "G":
            continue
        out = prim.fn(g, 2) if prim.colour_arg else prim.fn(g)
        assert np.array_equal(g, before), f"{prim.name} modified its input"
        if out is None:
            continue
        if prim.dst == "G":
            assert isinstance(out, np.ndarray) and out.ndim == 2 and out.dtype == np.int8, prim.name
            assert 0 <= out.min() and out.max() <= 9 and max(out.shape) <= 30, prim.name
        elif prim.dst == "I":
            assert isinstance(out, int), prim.name
        elif prim.dst == "P":
            assert out[0].shape == out[1].shape, prim.name


def test_program_text_round_trip_and_type_checks():
    p = Program.parse("objs(multi) | select(largest) | colormap(1>2,3>4)")
    assert str(Program.parse(str(p))) == str(p)
    assert run_program(Program.parse("crop(content) | rot(90)"), G("000", "012")).tolist() == [[2], [1]]
    for bad in ("select(largest)", "rot(90) | objs(color)", "fill_enclosed", "rot(45)", "rot", "nonsense",
                "fill_enclosed(12)", "fill_enclosed(down)", "dedupe(2)", "rot90(3)"):
        with pytest.raises(InvalidInputError):
            Program.parse(bad)


def test_retired_names_parse_as_the_option_that_replaced_them():
    """Programs remembered before the families existed still read and run the same."""
    old = Program.parse("crop_content | mirror4")
    assert str(old) == "crop(content) | mirror(all)"
    assert str(Program.parse("objs_multi | obj_largest")) == "objs(multi) | select(largest)"
    g = G("000", "012")
    assert run_program(old, g).tolist() == run_program(Program.parse(str(old)), g).tolist() == [[1, 2, 2, 1]] * 2


def test_colormap_is_fitted_from_pairs():
    assert fit_colormap([G("12")], [G("34")]) == ((1, 3), (2, 4))
    assert fit_colormap([G("11")], [G("34")]) is None  # one colour cannot become two
    assert fit_colormap([G("12")], [G("12")]) is None  # the identity is not a step
    assert apply_colormap(G("125"), ((1, 3), (2, 4))).tolist() == [[3, 4, 5]]
    assert candidate_colors([G("14")], [G("10")]) == (4, 1)


def test_objects_split_by_colour_and_connectivity():
    g = G("110", "001", "220")
    assert [o.size for o in objects(g)] == [2, 1, 2]
    assert [o.size for o in objects(g, diagonal=True, multicolor=True)] == [5]


def test_local_rules_are_fitted_from_pairs_and_refuse_unseen_neighbourhoods():
    from selfmem.solver.arc._learned import RULES, apply_rule, fit_rule

    # every lone 1 gets a ring of 2s: a 3x3-neighbourhood rule
    src = G("00000", "01000", "00000", "00010", "00000")
    dst = G("22200", "21200", "22222", "00212", "00222")
    for kind in ("patch3", "mask3"):
        table = fit_rule(kind, [src], [dst])
        assert table is not None
        assert np.array_equal(apply_rule(kind, table, src), dst)
    assert fit_rule("count8", [G("10", "00")], [G("12", "22")]) is not None
    assert fit_rule("cross", [G("1"), G("1")], [G("1"), G("2")]) is None  # one feature, two colours: no rule
    table = fit_rule("cross", [G("10")], [G("12")])
    assert apply_rule("cross", table, G("30")) is None  # colour 3 was never seen
    rowcol = fit_rule("rowcol", [G("100", "000")], [G("111", "000")])
    assert apply_rule("rowcol", rowcol, G("000", "100")).tolist() == [[0, 0, 0], [1, 1, 1]]
    assert set(RULES) == {"patch3", "cross", "mask3", "count8", "rowcol", "stamp", "objsize", "objrank", "objborder", "objholes",
                          "lines", "enclosed", "window", "npatch3", "nrowcol"}


def test_colour_normalised_rules_serve_pairs_and_tests_in_other_colours():
    from selfmem.solver.arc._learned import apply_rule, fit_rule

    # the rarer colour's cells get a ring of a new colour 5; each pair uses its own two colours
    src1, dst1 = G("1111", "1211", "1111"), G("5551", "5251", "5551")
    src2, dst2 = G("333", "343", "333"), G("555", "545", "555")
    assert fit_rule("patch3", [src1, src2], [dst1, dst2]) is not None
    table = fit_rule("npatch3", [src1, src2], [dst1, dst2])
    assert table is not None
    test = G("7777", "7877", "7777")
    assert apply_rule("patch3", fit_rule("patch3", [src1, src2], [dst1, dst2]), test) is None  # colours never seen
    assert apply_rule("npatch3", table, test).tolist() == G("5557", "5857", "5557").tolist()
    assert apply_rule("npatch3", table, G("77", "77")) is None  # a neighbourhood never seen


def test_the_window_rule_crops_one_fixed_window_from_a_corner_and_runs_in_a_program():
    from selfmem.solver.arc._learned import apply_rule, fit_rule

    # the output is the 2x2 window one cell in from the bottom-right corner, whatever the input's size
    a, b = G("12345", "67890", "12345", "67890"), G("1234", "5678", "9012", "3456", "7890")
    table = fit_rule("window", [a, b], [a[1:3, 2:4], b[2:4, 1:3]])
    assert table is not None
    test = G("111111", "222222", "345678", "999999")
    assert apply_rule("window", table, test).tolist() == [[2, 2], [6, 7]]
    assert apply_rule("window", table, G("12", "34")) is None  # too small for the window
    assert fit_rule("window", [a], [G("55", "55")]) is None  # no window of the input
    assert fit_rule("window", [a, b], [a[:2, :2], b[:3, :2]]) is None  # outputs of two shapes
    assert fit_rule("window", [a], [a]) is None  # not smaller: not a crop
    p = Program.parse("flip(h) | rule_window")
    assert run_program(p, test, [(a, a[:, ::-1][1:3, 2:4]), (b, b[:, ::-1][2:4, 1:3])]).tolist() == \
        test[:, ::-1][1:3, 3:5].tolist()  # the same corner and offset on the flipped grid


def test_relational_rules_read_colours_from_sources_so_new_colours_and_places_apply():
    from selfmem.solver.arc._learned import apply_rule, fit_rule

    # gaps between two cells of one colour on a row or a column are closed with that colour
    src = G("10001", "00000", "20000", "00000", "20000")
    dst = G("11111", "00000", "20000", "20000", "20000")
    table = fit_rule("lines", [src], [dst])
    assert table is not None
    test = G("00000", "01010", "00000", "00000", "00000")
    assert fit_rule("patch3", [src], [dst]) is None or apply_rule("patch3", fit_rule("patch3", [src], [dst]), test) is None
    assert apply_rule("lines", table, G("10100", "00000", "20000", "00000", "20000")).tolist() == \
        G("11100", "00000", "20000", "20000", "20000").tolist()
    assert apply_rule("lines", table, test).tolist() == G("00000", "01110", "00000", "00000", "00000").tolist()
    assert apply_rule("lines", table, G("50000")) is None  # a cell of colour 5: a key never seen
    # background closed off from the border takes one colour, whatever the wall's colour
    walls = G("33300", "30300", "33300", "00000")
    filled = G("33300", "34300", "33300", "00000")
    enclosed = fit_rule("enclosed", [walls], [filled])
    assert enclosed is not None
    assert apply_rule("enclosed", enclosed, G("00000", "06660", "06060", "06660")).tolist() == \
        G("00000", "06660", "06460", "06660").tolist()
    assert fit_rule("lines", [G("12")], [G("12")]) is None  # the identity: nothing learned
    assert fit_rule("enclosed", [G("1", "0")], [G("1", "2"), ]) is not None
    assert fit_rule("enclosed", [G("10"), G("10")], [G("12"), G("13")]) is None  # one key, two colours, no source


def test_the_stamp_rule_paints_each_colours_pattern_on_any_arrangement():
    from selfmem.solver.arc._learned import apply_rule, fit_rule

    src = G("00000", "00000", "00100", "00000", "00000")
    dst = G("00000", "02220", "02120", "02220", "00000")
    table = fit_rule("stamp", [src], [dst])
    assert table is not None
    # two cells where the train pair had one, one of them at the edge: a lookup table has not seen these
    test = G("00000", "10000", "00000", "00000", "00010")
    assert apply_rule("stamp", table, test).tolist() == G("22000", "12000", "22000", "00222", "00212").tolist()
    assert fit_rule("patch3", [src], [dst]) is not None and apply_rule("patch3", fit_rule("patch3", [src], [dst]), test) is None
    assert fit_rule("stamp", [G("010")], [G("111")]) is None  # no background left: not a pattern on a background
    assert fit_rule("stamp", [G("01000000")], [G("01000300")]) is None  # a change farther than 2 cells from any colour


def test_a_program_with_a_rule_runs_given_the_train_pairs():
    src, dst = G("010", "000"), G("212", "000")
    p = Program.parse("rule_cross")
    assert run_program(p, src) is None  # a rule needs the train pairs to be fitted on
    assert run_program(p, src, [(src, dst)]).tolist() == dst.tolist()


def test_registry_states_types_and_weight_and_refuses_duplicates_and_bad_types():
    from selfmem.solver.arc._primitives import primitive

    assert PRIMITIVES["objs_overlay"].src == "O" and PRIMITIVES["fill_boxes"].colour_arg
    assert all(p.weight > 0 for p in PRIMITIVES.values())
    gravity = PRIMITIVES["gravity"]
    assert gravity.arg == "choice" and gravity.weight == pytest.approx(sum(gravity.choice_weights))
    with pytest.raises(ValueError, match="twice"):
        primitive()(FNS["rot90"])
    with pytest.raises(ValueError, match="types"):
        primitive("G", "X")
    with pytest.raises(ValueError, match="weight"):
        primitive(weight=0)


@pytest.mark.parametrize("name,value", [("crop_frame", G("12", "34")), ("tile_rot4", G("12")),
                                        ("upscale_ncolors", G("11")),
                                        ("inpaint_sym", G("12", "34")), ("inpaint_crop", G("12", "34")),
                                        ("slide_major", G("12")),
                                        ("rays_to_largest", G("1"))])
def test_added_primitives_do_not_apply_where_they_mean_nothing(name, value):
    assert FNS[name](value) is None


# -- objects on their canvas (_prims_scene) ---------------------------------------------------------------
SCENE_GRID = G("10000", "00220", "00200", "30000", "00001")
# objects of objs(color), reading order: 1 at (0,0), the 2-shape (an L of 3 cells), 3 at (3,0), 1 at (4,4)
# predicate: indices of the objects kept, or None when it keeps all or none (no new value)
KEPT = {"largest": [1], "not_largest": [0, 2, 3], "smallest": [0, 2, 3], "not_smallest": [1], "border": [0, 2, 3],
        "inside": [1], "unique_color": [1, 2], "common_color": [0, 3], "unique_shape": [1], "common_shape": [0, 2, 3],
        "single": [0, 2, 3], "multi": [1], "symmetric": [0, 2, 3], "asymmetric": [1], "holes": None, "solid": None,
        "rect": [0, 2, 3], "multicolor": None}
# transform: the painted result of every object transformed in its box (None: no object changes or it cannot apply)
EACH = {"flip_h": G("10000", "00220", "00020", "30000", "00001"), "flip_v": G("10000", "00200", "00220", "30000", "00001"),
        "rot180": G("10000", "00020", "00220", "30000", "00001"), "transpose": None,  # the L is its own transpose
        "fill_box": G("10000", "00220", "00220", "30000", "00001"), "hollow": None}
SCENE_FNS = {f"filter_{n}" for n in KEPT} | {f"each_{n}" for n in EACH} | {"recolor", "paint", "paint_over"}


def test_every_scene_function_has_a_case():
    assert set(CASES) | SCENE_FNS == set(FNS), set(FNS) ^ (set(CASES) | SCENE_FNS)


@pytest.mark.parametrize("name", sorted(KEPT))
def test_keep_filters_the_scene_by_its_predicate(name):
    scene = FNS["objs_color"](SCENE_GRID)
    out = run_program(Program.parse(f"objs(color) | keep({name}) | paint"), SCENE_GRID)
    if KEPT[name] is None:
        assert FNS[f"filter_{name}"](scene) is None and out is None
        return
    kept = FNS[f"filter_{name}"](scene)
    assert [next(i for i, x in enumerate(scene) if x is o) for o in kept] == KEPT[name]
    assert kept.source is SCENE_GRID
    expected = np.zeros_like(SCENE_GRID)
    for o in kept:
        expected[o.top:o.top + o.grid.shape[0], o.left:o.left + o.grid.shape[1]] |= o.grid
    assert out.tolist() == expected.tolist()


@pytest.mark.parametrize("name", sorted(EACH))
def test_each_transforms_every_object_in_its_box(name):
    out = run_program(Program.parse(f"objs(color) | each({name}) | paint"), SCENE_GRID)
    if EACH[name] is None:
        assert out is None
    else:
        assert out.tolist() == EACH[name].tolist(), out


def test_recolor_and_the_two_paints():
    assert run_program(Program.parse("objs(color) | keep(largest) | recolor(4) | paint_over"), SCENE_GRID).tolist() == \
        G("10000", "00440", "00400", "30000", "00001").tolist()
    assert run_program(Program.parse("objs(color) | keep(single) | recolor(4) | paint"), SCENE_GRID).tolist() == \
        G("40000", "00000", "00000", "40000", "00004").tolist()
    plain = O(G("1"))  # objects without their grid (not a scene) cannot be painted
    assert FNS["paint"](plain) is None and FNS["paint_over"](plain) is None and FNS["recolor"](plain, 2) is None
    assert FNS["filter_largest"](plain) is None and FNS["each_flip_h"](plain) is None
    scene = FNS["objs_color"](SCENE_GRID)
    assert FNS["recolor"](FNS["filter_common_color"](scene), 1) is None  # already that colour: no new value


def test_the_search_paints_a_filtered_scene_without_queueing_the_paint():
    """In a DSL of splits, filters and paints only (``dsl=``): the macro that erases border objects is not there."""
    from selfmem.solver.arc import SearchSettings, search_task

    train = [(SCENE_GRID, G("00000", "00220", "00200", "00000", "00000")),
             (G("11100", "00000", "00400", "00000", "00002"), G("00000", "00000", "00400", "00000", "00000"))]
    test_in = G("00000", "03300", "00000", "00005", "10000")
    dsl = PRIMITIVES.only(["rot", "flip", "objs", "keep", "each", "paint", "paint_over"])
    r = search_task(train, [test_in], SearchSettings(budget=200), dsl=dsl)
    assert r.programs and r.predictions[0][0].tolist() == G("00000", "03300", "00000", "00000", "00000").tolist()
    assert str(r.programs[0]) in ("objs(color) | keep(inside) | paint", "objs(multi) | keep(inside) | paint"), r.programs
    assert not search_task(train, [test_in], SearchSettings(budget=200), dsl=dsl.without(["paint", "paint_over"])).programs


def test_the_primitives_report_lists_the_dsl_as_it_is():
    """docs/arc-primitives.md (benchmarks/arc_primitives.py) has one row per primitive, written as the DSL writes it."""
    import re

    doc = (Path(__file__).parents[1] / "docs" / "arc-primitives.md").read_text()
    rows = re.findall(r"^\| `([^`]+)` \| (\d+) \|", doc, re.M)
    assert [sig for sig, _ in rows] == [p.signature() for p in PRIMITIVES.values()]
    assert f"{len(PRIMITIVES)} primitives now" in doc


def _join_loop(g, rows, cols, c=None):
    """The row-by-row join the vectorised `_join` replaced (issue 39's search speed)."""
    out = g.copy()
    for view, res in [(g, out)] * rows + [(g.T, out.T)] * cols:
        for i, row in enumerate(view):
            for v in np.unique(row[row != 0]):
                idx = np.flatnonzero(row == v)
                if len(idx) >= 2:
                    seg = res[i, idx[0]:idx[-1] + 1]
                    seg[seg == 0] = v if c is None else c
    return out


def _diag_loop(g):
    out = g.copy()
    h, w = g.shape
    for flip in (False, True):
        view, src = (out[:, ::-1], g[:, ::-1]) if flip else (out, g)
        for d in range(-h + 1, w):
            line, cells = np.diagonal(src, d), np.diagonal(view, d).copy()
            for v in np.unique(line[line != 0]):
                idx = np.flatnonzero(line == v)
                if len(idx) >= 2:
                    seg = cells[idx[0]:idx[-1] + 1]
                    seg[seg == 0] = v
            ys = np.arange(max(0, -d), max(0, -d) + len(cells))
            view[ys, ys + d] = cells
    return out


@settings(max_examples=60, deadline=None)
@given(arrays(np.int8, st.tuples(st.integers(1, 8), st.integers(1, 8)), elements=st.sampled_from([0, 0, 0, 1, 2, 3])))
def test_vectorised_line_and_gravity_primitives_equal_their_loops(g):
    from selfmem.solver.arc._prims_lines import _join

    for rows, cols, c in ((True, False, None), (False, True, None), (True, True, None), (True, True, 5)):
        assert _join(g, rows, cols, c).tolist() == _join_loop(g, rows, cols, c).tolist()
    assert FNS["connect_diag"](g).tolist() == _diag_loop(g).tolist()
    falls = [np.concatenate([np.zeros(int((col == 0).sum()), np.int8), col[col != 0]]) for col in g.T]
    assert FNS["gravity_down"](g).tolist() == np.stack(falls, axis=1).tolist()
