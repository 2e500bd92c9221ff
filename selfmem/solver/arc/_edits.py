"""Retrieve-and-edit: the typed one-step edits of a remembered program.

A remembered program one edit away from a task's solution is cheap to reach by editing it and
expensive to reach by search (an inserted step makes a program one step longer than the search's
depth limit). :func:`typed_edits` lists the edits of a program (:func:`selfmem.solver.step_edits`,
which any solver can use) that keep it well typed:

- ``replace``: a step by another primitive (or another option of a choice) with the same types;
- ``insert``: a step whose input type is the value's type at that point and whose output type is what
  the next step takes (a grid or a scene at the end);
- ``delete``: a step whose output type equals its input type.

Colour arguments are not edited (the search refits them); every new step's arguments are the task's
candidate colours or the primitive's options. The search tries the edits of the nearest remembered
programs, cheapest first under its prior (:class:`~selfmem.solver.arc.SearchSettings`, ``edit_*``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import cast

from .._programs import EDIT_KINDS, step_edits
from ._dsl import Step
from ._primitives import DSL

__all__ = ["EDIT_KINDS", "typed_edits"]

_ENDS = ("G", "O")
"""Types a program may end with: a grid, or a scene (which the search checks painted)."""


def typed_edits(steps: Sequence[Step], dsl: DSL, colours: Sequence[int],
                kinds: Sequence[str] = EDIT_KINDS) -> Iterator[tuple[str, tuple[Step, ...]]]:
    """The well-typed one-step edits of ``steps``, as ``(kind, edited steps)``.

    Parameters
    ----------
    steps : sequence of Step
        A program of primitives of ``dsl`` (learned steps such as ``colormap`` removed).
    dsl : DSL
    colours : sequence of int
        The task's candidate colours (arguments of new colour steps).
    kinds : sequence of {"replace", "insert", "delete"}

    Examples
    --------
    >>> from selfmem.solver.arc._registry import DEFAULT_DSL
    >>> small = DEFAULT_DSL.only(["rot", "dedupe"])
    >>> edits = [(k, " | ".join(map(str, e))) for k, e in typed_edits([Step("rot", "90")], small, [])]
    >>> edits[:3], edits[3], len(edits)
    ([('replace', 'rot(180)'), ('replace', 'rot(270)'), ('replace', 'dedupe')], ('insert', 'rot(90) | rot(90)'), 11)
    """
    steps = tuple(steps)
    if any(s.name not in dsl for s in steps):
        return
    vocabulary = [Step(p.name, a) for p in dsl.values() for a in p.options(colours)]

    def valid(edited: tuple[Step, ...]) -> bool:
        kind = "G"
        for st in edited:
            prim = dsl[st.name]
            if prim.src != kind:
                return False
            kind = prim.dst
        return kind in _ENDS

    colour = {i for i, st in enumerate(steps) if dsl[st.name].arg == "colour"}
    for kind, found in step_edits(steps, vocabulary, kinds=kinds, valid=valid):  # type: ignore[arg-type]
        edited = cast("tuple[Step, ...]", found)
        if kind == "replace" and any(edited[i] != steps[i] and edited[i].name == steps[i].name for i in colour):
            continue  # a colour is refitted, not edited
        yield kind, edited
