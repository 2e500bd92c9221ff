"""The ARC task type: task text for the memory, prompts for an LLM, and competition scoring.

``describe_task`` writes what a similar task would share: sizes and how they change, colours used,
kept, added and removed, object counts, symmetry, and (in the ``"both"`` and ``"grids"`` styles) the
first train pair in the compact grid text. ``ARCTaskType`` implements the solver loop's
:class:`~selfmem.solver.TaskType`: its answers are DSL programs (text), verified on every train pair.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..._errors import InvalidInputError
from .._tasks import Verdict
from ._dsl import PRIMITIVES, Program, run_program
from ._grid import ARCTask, Grid, grid_text, objects

__all__ = ["describe_task", "ARCTaskType", "score_predictions", "TEXT_STYLES"]

TEXT_STYLES = ("features", "grids", "both")


def _size(g: Grid) -> str:
    return f"{g.shape[0]}x{g.shape[1]}"


def _colours(cs: set[int]) -> str:
    return " ".join(str(c) for c in sorted(cs)) or "none"


def _symmetry(grids: Sequence[Grid]) -> str:
    tags = [name for name, f in (("left-right", lambda g: g[:, ::-1]), ("up-down", lambda g: g[::-1]),
                                 ("rotation", lambda g: np.rot90(g, 2)))
            if all(np.array_equal(g, f(g)) for g in grids)]
    return ", ".join(tags) or "none"


def _size_change(pairs: Sequence[tuple[Grid, Grid]]) -> str:
    if all(i.shape == o.shape for i, o in pairs):
        return "output the same size as the input"
    ratios = {(o.shape[0] / i.shape[0], o.shape[1] / i.shape[1]) for i, o in pairs}
    if len(ratios) == 1:
        ry, rx = ratios.pop()
        if ry >= 1 and rx >= 1:
            return f"output larger: {ry:g} times the height, {rx:g} times the width"
        return f"output smaller: {ry:.2g} of the height, {rx:.2g} of the width"
    outs = {o.shape for _, o in pairs}
    if len(outs) == 1:
        return f"output always {_size(pairs[0][1])}"
    return "output size varies, " + ("smaller" if all(o.size < i.size for i, o in pairs) else "mixed")


def describe_task(task: ARCTask, style: str = "both") -> str:
    """The text the memory embeds and searches for a task (``style``: features, grids or both).

    >>> g = np.array([[1, 0], [0, 0]], np.int8)
    >>> print(describe_task(ARCTask("t", ((g, g.T),), (g,)), "features").splitlines()[1])
    sizes: 2x2 -> 2x2; output the same size as the input
    """
    if style not in TEXT_STYLES:
        raise InvalidInputError(f"style must be one of {TEXT_STYLES}, got {style!r}")
    pairs = task.train
    lines = [f"ARC task with {len(pairs)} examples"]
    if style != "grids":
        cin = set().union(*(np.unique(i).tolist() for i, _ in pairs))
        cout = set().union(*(np.unique(o).tolist() for _, o in pairs))
        n_in = [len(objects(i, diagonal=True, multicolor=True)) for i, _ in pairs]
        n_out = [len(objects(o, diagonal=True, multicolor=True)) for _, o in pairs]
        same = [i.shape == o.shape for i, o in pairs]
        lines += [f"sizes: {', '.join(f'{_size(i)} -> {_size(o)}' for i, o in pairs[:3])}; {_size_change(pairs)}",
                  f"colours: input {_colours(cin)}; output {_colours(cout)}; added {_colours(cout - cin)}; "
                  f"removed {_colours(cin - cout)}",
                  f"objects: input {min(n_in)}-{max(n_in)}, output {min(n_out)}-{max(n_out)}",
                  f"symmetry: input {_symmetry([i for i, _ in pairs])}; output {_symmetry([o for _, o in pairs])}"]
        if all(same):
            changed = np.mean([np.mean(i != o) for i, o in pairs])
            lines.append(f"cells changed: {changed:.0%}")
    if style != "features":
        i, o = pairs[0]
        lines += ["example input:", grid_text(i[:12, :30]), "example output:", grid_text(o[:12, :30])]
    return "\n".join(lines)


def score_predictions(task: ARCTask, predictions: Sequence[Sequence[Grid]]) -> float:
    """Competition score: the share of test inputs whose answer is among the (at most 2) attempts."""
    if task.test_outputs is None:
        raise InvalidInputError(f"task {task.id!r} has no known test outputs to score against")
    hits = 0
    for t, truth in enumerate(task.test_outputs):
        hits += any(len(a) > t and a[t].shape == truth.shape and np.array_equal(a[t], truth) for a in predictions[:2])
    return hits / len(task.test_outputs)


class ARCTaskType:
    """ARC tasks for :class:`~selfmem.solver.MemorySolver`: answers are DSL programs checked on every train pair.

    Examples
    --------
    >>> g = np.array([[1, 2]], np.int8)
    >>> tt = ARCTaskType()
    >>> task = ARCTask("t", ((g, g[:, ::-1]),), (g,))
    >>> tt.verify(task, tt.parse("Program: flip_h")).ok
    True
    """

    name = "arc"

    def __init__(self, style: str = "both") -> None:
        if style not in TEXT_STYLES:
            raise InvalidInputError(f"style must be one of {TEXT_STYLES}, got {style!r}")
        self.style = style

    def task_id(self, task: ARCTask) -> str:
        return task.id

    def render(self, task: ARCTask) -> str:
        shown = "\n".join(f"input:\n{grid_text(i)}\noutput:\n{grid_text(o)}" for i, o in task.train[:3])
        return (f"{describe_task(task, self.style)}\n\nTrain pairs:\n{shown}\n\nWrite a program that maps each input "
                f"to its output as primitives joined by ' | ', e.g. 'rot(90) | crop(content)'. Primitives: "
                f"{PRIMITIVES.signatures()}, colormap(a>b,...).\nProgram:")

    def parse(self, output: str) -> Program:
        for line in str(output).strip().splitlines():
            line = line.strip().strip("`").strip()
            if line.lower().startswith("program:"):
                line = line[8:].strip()
            if line:
                return Program.parse(line)
        raise InvalidInputError("the output holds no program")

    def verify(self, task: ARCTask, answer: Program) -> Verdict:
        right = sum(1 for i, o in task.train if _same(run_program(answer, i, task.train), o))
        ok = right == len(task.train)
        return Verdict(ok, right / len(task.train), f"{right}/{len(task.train)} train pairs")

    def describe(self, task: ARCTask, answer: Program) -> str:
        return f"{describe_task(task, self.style)}\nsolved by: {answer}"


def _same(a: Grid | None, b: Grid) -> bool:
    return a is not None and a.shape == b.shape and np.array_equal(a, b)
