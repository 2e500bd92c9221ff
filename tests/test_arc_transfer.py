"""Experience that transfers: the transformation embedding, hindsight experiences, the nearest-experience prior."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import make_arc_task as make_task
from selfmem import InvalidInputError, Memory
from selfmem.solver.arc import ARCSolver, Program, SearchSettings, run_program, search_task
from selfmem.solver.arc._experience import ExperiencePrior, PriorSettings, memory_config
from selfmem.solver.arc._features import FEATURE_DIM, FEATURE_NAMES, transformation_features
from selfmem.solver.arc._search import Guidance

DEEP = Program.parse("crop_content | mirror_right | upscale2")




def test_features_are_unit_length_and_name_the_change():
    g = np.array([[1, 0, 0], [2, 0, 0]], np.int8)
    v = transformation_features([(g, g[:, ::-1])], normalize=False)
    assert v.shape == (FEATURE_DIM,) and len(FEATURE_NAMES) == FEATURE_DIM
    f = dict(zip(FEATURE_NAMES, v))
    assert f["geom_flip_h"] == 1 and f["same_shape"] == 1 and f["geom_rot90"] == 0
    up = transformation_features([(g, np.kron(g, np.ones((2, 2), np.int8)))], normalize=False)
    assert dict(zip(FEATURE_NAMES, up))["multiple_of_input"] == 1
    assert np.isclose(np.linalg.norm(transformation_features([(g, g.T)])), 1.0)
    with pytest.raises(InvalidInputError):
        transformation_features([])


def test_same_program_on_other_grids_is_nearer_than_another_program():
    a1, a2 = make_task("a1", Program.parse("upscale2"), 1), make_task("a2", Program.parse("upscale2"), 2)
    b = make_task("b", Program.parse("flip_v"), 3)
    va, vb = transformation_features(a1.train), transformation_features(b.train)
    assert float(va @ transformation_features(a2.train)) > float(va @ vb)


def test_search_collects_distinct_non_trivial_experiences():
    task = make_task("t", DEEP, 4)
    r = search_task(task.train, task.test_inputs, SearchSettings(budget=300, collect=50))
    assert 0 < len(r.experiences) <= 50
    programs = [p for p, _ in r.experiences]
    assert len(set(programs)) == len(programs)
    for p, v in r.experiences:
        outs = [run_program(Program.parse(p), i) for i, _ in task.train]
        assert not all(np.array_equal(o, i) for o, (i, _) in zip(outs, task.train))  # no identities
        assert np.allclose(v, transformation_features(list(zip([i for i, _ in task.train], outs))), atol=1e-6)
    assert search_task(task.train, task.test_inputs, SearchSettings(budget=300)).experiences == ()


def test_prior_from_near_experiences_finds_a_deep_program_sooner():
    task = make_task("deep", DEEP, 5)
    others = [make_task(f"o{i}", DEEP, 10 + i) for i in range(3)]
    prior = ExperiencePrior(PriorSettings(k=8, seeds=0)).fit(
        np.array([transformation_features(t.train) for t in others]), [str(DEEP)] * 3, [t.id for t in others])
    guided = search_task(task.train, task.test_inputs, SearchSettings(budget=6000, default_share=0.5),
                         prior.guidance(transformation_features(task.train)))
    plain = search_task(task.train, task.test_inputs, SearchSettings(budget=6000))
    assert guided.programs and guided.nodes_to_solution < (plain.nodes_to_solution or 6001) / 4
    p, pairs, used = prior.distribution(transformation_features(task.train))
    assert max(p, key=p.get) in DEEP.names and abs(sum(p.values()) - 1) < 1e-6 and len(used) == 3
    assert pairs["crop"] == {"mirror": 1.0}
    # leaving the task's own experiences out leaves nothing here
    assert prior.nearest(transformation_features(task.train), 5, exclude_task="o0")[0].tolist() != []
    assert len(prior.nearest(np.ones(FEATURE_DIM), 5)[0]) == 3


def test_a_zero_prior_is_a_floor_not_an_error():
    task = make_task("t", Program.parse("flip_h"), 6)
    prior = {n: 0.0 for n in Program.parse("flip_h").names} | {"rot": 1.0}
    r = search_task(task.train, task.test_inputs, SearchSettings(budget=400), Guidance(prior=prior))
    assert r.programs and str(r.programs[0]) == "flip(h)"


def test_solver_records_experiences_with_the_own_view_and_reloads_them(tmp_path):
    from dataclasses import replace

    cfg = replace(memory_config(), background=False)
    tasks = [make_task(f"t{i}", Program.parse(p), 20 + i) for i, p in enumerate(["upscale2", "flip_v", "rot90"])]
    with Memory(tmp_path / "m", cfg, progress=False) as mem:
        res = ARCSolver(mem, settings=SearchSettings(budget=200), workers=1, collect=20).solve_all(tasks)
        assert all(r.solved for r in res)
        kinds = mem.stats().kinds
        assert kinds["experience"] > 3 and kinds["solution"] == 3 and kinds["task"] == 3
        prior = ExperiencePrior.from_memory(mem)
        assert len(prior) == kinds["experience"] + 3 and prior.solution_.sum() == 3
        # the own view is exactly the transformation embedding of the task's train pairs
        i = int(np.flatnonzero(prior.solution_ & (prior.tasks_ == "t0"))[0])
        assert np.allclose(prior.vectors_[i], transformation_features(tasks[0].train), atol=1e-5)
        hit = mem.search("experience: upscale2", k=1, kinds=["experience"])[0]
        assert hit.record.metadata["primitives"] == list(Program.parse(hit.record.metadata["program"]).names)
    with Memory(tmp_path / "m", read_only=True, progress=False) as mem:
        new = make_task("new", Program.parse("upscale2"), 40)
        r = ARCSolver(mem, settings=SearchSettings(budget=200), workers=1, record=False,
                      experience=PriorSettings()).solve(new)
        plain = search_task(new.train, new.test_inputs, SearchSettings(budget=200))
        # the remembered program is tried among the seeds, before the search reaches it by its own order
        assert r.solved and r.source == "seed" and r.nodes_to_solution < plain.nodes_to_solution, (r, plain)


def test_experience_needs_the_transformation_view(tmp_path):
    from selfmem import EmbeddingConfig, MemoryConfig

    cfg = MemoryConfig(embedding=EmbeddingConfig(general="hash:64", own=None, mode="general"), background=False)
    with Memory(tmp_path / "m", cfg, progress=False) as mem:
        with pytest.raises(InvalidInputError, match="memory_config"):
            ARCSolver(mem, experience=PriorSettings())
        with pytest.raises(InvalidInputError, match="collect"):
            ARCSolver(mem, collect=-1)


def test_abstractions_are_mined_stored_with_parents_and_extend_the_search(tmp_path):
    from dataclasses import replace

    from selfmem.solver.arc._abstractions import load_abstractions, mine_abstractions, store_abstractions

    sols = [("a", "crop_content | mirror_right"), ("b", "rot90 | crop_content | mirror_right"), ("c", "flip_h"),
            ("d", "crop_content | mirror_right | colormap(1>2)"), ("e", "not_a_primitive")]
    found = mine_abstractions(sols)
    assert [str(a.program) for a in found] == ["crop(content) | mirror(right)"]
    assert found[0].support == 3 and found[0].sources == ("a", "b", "d")
    assert mine_abstractions(sols, min_support=4) == []
    with pytest.raises(InvalidInputError):
        mine_abstractions(sols, max_len=1)
    with Memory(tmp_path / "m", replace(memory_config(), background=False), progress=False) as mem:
        ids = mem.add_many(["solution a", "solution b"], kind="solution",
                           own_embedding=np.ones((2, FEATURE_DIM), np.float32))
        (aid,) = store_abstractions(mem, found, {"a": ids[0], "b": ids[1]})
        assert mem.get(aid).kind == "abstraction" and sorted(mem.get(aid).parents) == sorted(ids)
        assert [str(p) for p in load_abstractions(mem)] == ["crop(content) | mirror(right)"]
    # a macro counts as one step: depth 2 reaches a 3-step program
    task = make_task("deep", DEEP, 7)
    settings = SearchSettings(budget=3000, max_depth=2)
    assert not search_task(task.train, task.test_inputs, settings).programs
    r = search_task(task.train, task.test_inputs, settings, Guidance(abstractions=(found[0].program,)))
    assert r.programs and str(r.programs[0]) == str(DEEP)


def test_default_share_keeps_what_a_misleading_prior_would_push_past_the_budget():
    program = Program.parse("crop_content | mirror_right")
    task = make_task("t", program, 7)
    plain = search_task(task.train, task.test_inputs, SearchSettings(budget=4000))
    assert plain.programs and plain.nodes_to_solution is not None
    budget = 2 * plain.nodes_to_solution + 50
    misled = Guidance(prior={n: 0.0 for n in program.names} | {"rot": 1.0, "flip": 1.0})
    alone = search_task(task.train, task.test_inputs, SearchSettings(budget=budget, default_share=0.0), misled)
    both = search_task(task.train, task.test_inputs, SearchSettings(budget=budget, default_share=0.5), misled)
    assert not alone.programs and both.programs and str(both.programs[0]) == str(plain.programs[0])
    # without a prior there is nothing to share with: the search is the plain one, node for node
    again = search_task(task.train, task.test_inputs, SearchSettings(budget=4000, default_share=0.5))
    assert again.nodes_to_solution == plain.nodes_to_solution
    with pytest.raises(InvalidInputError, match="default_share"):
        SearchSettings(default_share=1.5)
