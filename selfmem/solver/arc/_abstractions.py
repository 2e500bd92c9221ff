"""Learned abstractions: frequent sub-programs of remembered solutions, stored as memories.

:func:`mine_abstractions` counts every contiguous sub-program (2 to ``max_len`` steps, colour
arguments kept) of the remembered solutions and keeps those that at least ``min_support`` distinct
tasks share, best compression first (``support * (steps - 1)``; a simple form of what DreamCoder and
Stitch compress). :func:`store_abstractions` writes each as a memory (``kind="abstraction"``, metadata
``program``, ``support``, ``sources``) whose ``parents`` are the solutions it came from, so the graph
links it by DERIVED_FROM to them. :func:`load_abstractions` reads them back at the start of a session;
the search expands each like one primitive (:class:`~selfmem.solver.arc.Guidance`), so a depth-3
search reaches longer programs.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..._errors import InvalidInputError
from .._programs import Subprogram, common_subprograms, remember_subprograms
from ._dsl import LEARNED, PRIMITIVES, Program

__all__ = ["Abstraction", "mine_abstractions", "store_abstractions", "load_abstractions"]


@dataclass(frozen=True)
class Abstraction:
    """A sub-program shared by remembered solutions: its steps, how many tasks use it, and which."""

    program: Program
    support: int
    sources: tuple[str, ...]

    @property
    def name(self) -> str:
        """A readable label: the steps (with their colour arguments) joined by ``+``."""
        return "+".join(str(s) for s in self.program.steps)


def mine_abstractions(solutions: Sequence[tuple[str, str]], *, min_support: int = 2, max_len: int = 3,
                      limit: int = 24) -> list[Abstraction]:
    """Frequent contiguous sub-programs of ``(task_id, program)`` solutions.

    Parameters
    ----------
    solutions : sequence of (str, str)
        Task ids and program texts (learned steps such as ``colormap`` are dropped).
    min_support : int
        Distinct tasks that must share a sub-program.
    max_len : int
        Longest sub-program (steps).
    limit : int
        At most this many, best compression first.

    Examples
    --------
    >>> sols = [("a", "crop(content) | flip(h)"), ("b", "crop(content) | flip(h) | upscale(2)"), ("c", "rot(90)")]
    >>> [(str(x.program), x.support) for x in mine_abstractions(sols)]
    [('crop(content) | flip(h)', 2)]
    """
    if min_support < 1 or max_len < 2:
        raise InvalidInputError("min_support must be >= 1 and max_len >= 2")
    programs = []
    for task_id, text in solutions:
        try:
            programs.append((str(task_id), [s for s in Program.parse(text).steps if s.name not in LEARNED]))
        except InvalidInputError:
            continue  # written by another DSL version
    return [Abstraction(Program(tuple(sub.steps)), sub.support, sub.sources)  # type: ignore[arg-type]
            for sub in common_subprograms(programs, min_support=min_support, max_len=max_len, limit=limit)]


def store_abstractions(memory: Any, abstractions: Sequence[Abstraction], solution_ids: dict[str, int],
                       own: Any = None) -> list[int]:
    """Write abstractions as ``kind="abstraction"`` memories with their source solutions as parents."""
    subs = [Subprogram(a.program.steps, a.support, a.sources) for a in abstractions]
    return remember_subprograms(memory, subs, solution_ids, own=own)


def load_abstractions(memory: Any, exclude_task: str | None = None) -> tuple[Program, ...]:
    """The abstractions a memory holds (programs this DSL can run), best compression first.

    ``exclude_task``: leave one task out (tuning on tasks the memory has seen): an abstraction counts only
    the other tasks it came from, and is dropped when fewer than 2 remain.
    """
    return tuple(p for p, sources in abstraction_sources(memory)
                 if exclude_task is None or len(set(sources) - {exclude_task}) >= 2)


def abstraction_sources(memory: Any) -> tuple[tuple[Program, tuple[str, ...]], ...]:
    """:func:`load_abstractions` with the task ids each abstraction came from."""
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "records.parquet"
        if memory.export(path, "parquet", progress=False) == 0:
            return ()
        table = pq.read_table(path, columns=["kind", "metadata"])
    rows = []
    for kind, md in zip(table.column("kind").to_pylist(), table.column("metadata").to_pylist()):
        if kind != "abstraction":
            continue
        md = json.loads(md) if isinstance(md, str) else (md or {})
        try:
            program = Program.parse(md.get("program", ""))
        except InvalidInputError:
            continue
        if program.steps and all(s.name in PRIMITIVES for s in program.steps):
            rows.append((-int(md.get("support", 1)) * (len(program) - 1), str(program), program,
                         tuple(str(t) for t in md.get("sources", ()))))
    return tuple((r[2], r[3]) for r in sorted(rows, key=lambda r: (r[0], r[1])))
