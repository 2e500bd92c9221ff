"""Programs in memory for any program-search solver (selfmem.solver: remember, retrieve, edit, compress)."""

from __future__ import annotations

import pytest

from selfmem import InvalidInputError, Memory
from selfmem._config import DEFAULT_KINDS
from selfmem.solver import (
    common_subprograms,
    program_edits,
    remember_program,
    remember_subprograms,
    remembered_programs,
    step_edits,
)
from helpers import hash_cfg

TASKS = {"t1": ("sort the numbers then reverse them", "sort | reverse"),
         "t2": ("sort the numbers then double each", "sort | double"),
         "t3": ("drop the negative numbers then sort them then reverse them", "drop_negative | sort | reverse")}


def test_remembered_programs_are_retrieved_nearest_first_and_edited(tmp_path):
    with Memory(tmp_path / "m", hash_cfg(kinds=DEFAULT_KINDS + ("abstraction",)), progress=False) as mem:
        ids = {t: remember_program(mem, text, prog, task_id=t, examples=[[[3, 1], [3, 1]]])
               for t, (text, prog) in TASKS.items()}
        query = "sort the numbers then reverse them"
        near = remembered_programs(mem, query, k=3)
        assert near[0].program == "sort | reverse" and near[0].task_id == "t1" and near[0].record_id == ids["t1"]
        assert [n.distance for n in near] == sorted(n.distance for n in near)
        assert all(abs(n.weight - 1 / (n.distance + 0.05)) < 1e-6 for n in near)
        assert mem.get(ids["t1"]).metadata["examples"] == [[[3, 1], [3, 1]]]
        assert "t1" not in {n.task_id for n in remembered_programs(mem, query, k=3, exclude_task="t1")}
        # the program one edit from the nearest remembered one is among its edits
        vocab = ["sort", "reverse", "double", "drop_negative", "halve"]
        edits = program_edits(near[0].program, vocab)
        assert ("insert", "drop_negative | sort | reverse") in edits and ("replace", "sort | double") in edits
        assert ("delete", "sort") in edits and len(edits) == 2 * 4 + 3 * 5 + 2
        # a solver's own validity check: here, 'sort' must come first
        typed = program_edits(near[0].program, vocab, valid=lambda steps: steps[0] == "sort")
        assert typed and all(t.split(" | ")[0] == "sort" for _, t in typed)
        # what several solutions share becomes an abstraction linked to the solutions it came from
        subs = common_subprograms([(t, p.split(" | ")) for t, (_, p) in TASKS.items()])
        assert [(s.steps, s.support, s.sources) for s in subs] == [(("sort", "reverse"), 2, ("t1", "t3"))]
        (aid,) = remember_subprograms(mem, subs, ids)
        assert mem.get(aid).metadata["program"] == "sort | reverse"
        linked = mem.neighbours(aid, "DERIVED_FROM", direction="out")
        assert {e.dst for e in linked.edges} == {f"memory:{ids['t1']}", f"memory:{ids['t3']}"}


def test_program_helpers_reject_bad_input(tmp_path):
    with pytest.raises(InvalidInputError, match="memory must be"):
        remembered_programs(object(), "x")
    with pytest.raises(InvalidInputError, match="vocabulary"):
        program_edits("a | b", "ab")
    with pytest.raises(InvalidInputError, match="kinds are some of"):
        list(step_edits(["a"], ["b"], kinds=["swap"]))
    with pytest.raises(InvalidInputError, match="max_len"):
        common_subprograms([], max_len=1)
    with Memory(tmp_path / "m", hash_cfg(), progress=False) as mem:
        with pytest.raises(InvalidInputError, match="program must be"):
            remember_program(mem, "a task", "  ", task_id="t")
        with pytest.raises(InvalidInputError, match="k must be"):
            remembered_programs(mem, "a task", k=0)
        assert mem.stats().records == 0  # nothing was written by the rejected call
