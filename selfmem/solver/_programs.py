"""Programs in memory, for any program-search solver: remember, retrieve, edit, compress.

A solver whose answers are programs (sequences of steps written as text, ``"crop | flip | tile"``)
records each solved task with :func:`remember_program`: a ``kind="solution"`` memory whose text is the
task's description and whose metadata holds the program, the task id and, optionally, the task's
examples. For a new task:

- :func:`remembered_programs` retrieves the programs of the most similar remembered tasks (cosine
  distance ``d`` of the task texts, weight ``w = 1 / (d + eps)``);
- :func:`program_edits` lists every one-step edit of a program (replace, insert, delete a step, over
  the solver's vocabulary, filtered by a validity check the solver gives): retrieve-and-edit, so a
  program one edit from a remembered one is among the first few hundred candidates, not millions;
- :func:`common_subprograms` finds the step sequences that several remembered programs share: the
  solver's learned abstractions (new primitives that cost less than their parts);
  :func:`remember_subprograms` stores them with the solutions they came from as parents.

The solver verifies candidates on its own examples; the memory only proposes. The ARC solver
(:mod:`selfmem.solver.arc`) uses the same edits and subprograms over its typed DSL.

Examples
--------
>>> from selfmem import Memory
>>> from selfmem._config import EmbeddingConfig, MemoryConfig
>>> cfg = MemoryConfig(embedding=EmbeddingConfig(general="hash:64", own=None, mode="general"))
>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d, Memory(d, cfg, progress=False) as mem:
...     _ = remember_program(mem, "reverse the list then double each item", "reverse | double", task_id="t1")
...     near = remembered_programs(mem, "reverse the list then triple each item", k=1)
...     edits = program_edits(near[0].program, ["reverse", "double", "triple"])
>>> near[0].program, near[0].task_id
('reverse | double', 't1')
>>> ("replace", "reverse | triple") in edits
True
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._errors import InvalidInputError

__all__ = ["EDIT_KINDS", "RememberedProgram", "Subprogram", "remember_program", "remembered_programs",
           "program_edits", "step_edits", "common_subprograms", "remember_subprograms"]

EDIT_KINDS = ("replace", "insert", "delete")
"""The one-step edits, in the order they are listed."""


@dataclass(frozen=True)
class RememberedProgram:
    """A remembered solution: its program, its task, how near that task is, and its weight ``1 / (d + eps)``."""

    program: str
    task_id: str
    distance: float
    weight: float
    record_id: int


@dataclass(frozen=True)
class Subprogram:
    """A step sequence shared by remembered programs: its steps, how many tasks use it, and which."""

    steps: tuple[Hashable, ...]
    support: int
    sources: tuple[str, ...]


def _memory(memory: Any) -> None:
    from .._api import MemoryAPI

    if not isinstance(memory, MemoryAPI):
        raise InvalidInputError(f"memory must be a selfmem.Memory (or another MemoryAPI), got {type(memory).__name__}")


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"{name} must be a non-empty string, got {value!r}")
    return value


def remember_program(memory: Any, task_text: str, program: str, *, task_id: str,
                     examples: Sequence[Any] | None = None, parents: Sequence[int] = ()) -> int:
    """Record a solved task and its program; returns the record id.

    Parameters
    ----------
    memory : Memory
    task_text : str
        The task as the solver describes it (what a similar task's text will be compared with).
    program : str
        The verified program, as text.
    task_id : str
    examples : sequence, optional
        The task's examples (JSON-serialisable), kept in the metadata for solvers that re-verify.
    parents : sequence of int
        Records the solution came from (e.g. the remembered solution it edits): DERIVED_FROM edges.
    """
    _memory(memory)
    _text("task_text", task_text), _text("program", program), _text("task_id", task_id)
    meta: dict[str, Any] = {"task_id": task_id, "program": program}
    if examples is not None:
        meta["examples"] = list(examples)
    return int(memory.add(f"{task_text}\nsolved by: {program}", kind="solution", metadata=meta,
                          parents=list(parents)))


def remembered_programs(memory: Any, task_text: str, *, k: int = 8, max_distance: float | None = None,
                        eps: float = 0.05, exclude_task: str | None = None) -> list[RememberedProgram]:
    """The programs of the ``k`` remembered solutions whose task texts are nearest, nearest first.

    ``exclude_task`` leaves a task's own solutions out (tuning on tasks the memory has seen).
    """
    _memory(memory)
    _text("task_text", task_text)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidInputError(f"k must be an integer >= 1, got {k!r}")
    if not eps > 0:
        raise InvalidInputError(f"eps must be > 0, got {eps!r}")
    where = None if exclude_task is None else {"task_id": {"$ne": exclude_task}}
    hits = memory.search(task_text, k=k, kinds=["solution"], where=where, mode="dense", max_distance=max_distance,
                         expand=False)
    return [RememberedProgram(str(h.record.metadata["program"]), str(h.record.metadata.get("task_id", "")),
                              float(h.distance), 1.0 / (float(h.distance) + eps), int(h.record.id))
            for h in hits if h.record.metadata.get("program")]


def step_edits(steps: Sequence[Hashable], vocabulary: Sequence[Hashable], *, kinds: Sequence[str] = EDIT_KINDS,
               valid: Callable[[tuple[Hashable, ...]], bool] | None = None
               ) -> Iterator[tuple[str, tuple[Hashable, ...]]]:
    """Every one-step edit of ``steps`` over ``vocabulary`` that ``valid`` accepts, as ``(kind, steps)``.

    Replacements of position 0 come first, then of position 1, ...; then insertions before position 0,
    1, ..., after the last; then deletions (of programs of two steps or more).
    """
    if not set(kinds) <= set(EDIT_KINDS):
        raise InvalidInputError(f"kinds are some of {EDIT_KINDS}, got {tuple(kinds)!r}")
    steps = tuple(steps)
    ok = valid or (lambda _: True)
    if "replace" in kinds:
        for i, old in enumerate(steps):
            for st in vocabulary:
                if st != old and ok(edited := steps[:i] + (st,) + steps[i + 1:]):
                    yield "replace", edited
    if "insert" in kinds:
        for i in range(len(steps) + 1):
            for st in vocabulary:
                if ok(edited := steps[:i] + (st,) + steps[i:]):
                    yield "insert", edited
    if "delete" in kinds and len(steps) > 1:
        for i in range(len(steps)):
            if ok(edited := steps[:i] + steps[i + 1:]):
                yield "delete", edited


def program_edits(program: str, vocabulary: Sequence[str], *, sep: str = " | ", kinds: Sequence[str] = EDIT_KINDS,
                  valid: Callable[[tuple[str, ...]], bool] | None = None) -> list[tuple[str, str]]:
    """:func:`step_edits` of a program written as text (steps joined by ``sep``), as ``(kind, text)``."""
    _text("program", program)
    if isinstance(vocabulary, str) or not all(isinstance(v, str) and v for v in vocabulary):
        raise InvalidInputError("vocabulary must be a sequence of non-empty step strings")
    steps = tuple(s.strip() for s in program.split(sep.strip()) if s.strip())
    check = None if valid is None else (lambda st: valid(tuple(str(s) for s in st)))
    return [(kind, sep.join(str(s) for s in edited)) for kind, edited in step_edits(steps, vocabulary, kinds=kinds,
                                                                                   valid=check)]


def common_subprograms(programs: Sequence[tuple[str, Sequence[Hashable]]], *, min_support: int = 2,
                       max_len: int = 3, limit: int = 24) -> list[Subprogram]:
    """Contiguous step sequences (2 to ``max_len`` steps) that at least ``min_support`` tasks' programs share.

    Parameters
    ----------
    programs : sequence of (str, sequence)
        Task ids and their programs' steps (split a text program with ``text.split(" | ")``).
    min_support, max_len, limit : int
        Tasks that must share one; longest; at most this many, best compression (``support * (steps - 1)``)
        first.

    Examples
    --------
    >>> progs = [("a", ["crop", "flip"]), ("b", ["crop", "flip", "tile"]), ("c", ["rot"])]
    >>> [(s.steps, s.support) for s in common_subprograms(progs)]
    [(('crop', 'flip'), 2)]
    """
    if min_support < 1 or max_len < 2 or limit < 1:
        raise InvalidInputError("min_support and limit must be >= 1 and max_len >= 2")
    seen: dict[tuple[Hashable, ...], set[str]] = defaultdict(set)
    for task_id, steps in programs:
        steps = tuple(steps)
        for n in range(2, max_len + 1):
            for i in range(len(steps) - n + 1):
                seen[steps[i:i + n]].add(str(task_id))
    found = [Subprogram(sub, len(tasks), tuple(sorted(tasks))) for sub, tasks in seen.items()
             if len(tasks) >= min_support]
    found.sort(key=lambda a: (-a.support * (len(a.steps) - 1), str(a.steps)))
    return found[:limit]


def remember_subprograms(memory: Any, subprograms: Sequence[Subprogram], solution_ids: Mapping[str, int], *,
                         sep: str = " | ", kind: str = "abstraction", own: Any = None) -> list[int]:
    """Store subprograms as memories of ``kind`` (metadata ``program``, ``support``, ``sources``) whose
    parents are the solutions they came from (``solution_ids``: task id -> record id); the memory's config
    must list ``kind`` (``MemoryConfig(kinds=DEFAULT_KINDS + ("abstraction",))``). ``own``, when given, is a
    function ``n -> array (n, d)`` of own-view vectors (a memory with a transformation view)."""
    _memory(memory)
    _text("kind", kind)
    if not subprograms:
        return []
    texts = [f"abstraction {'+'.join(map(str, s.steps))}: {' then '.join(map(str, s.steps))} "
             f"(used by {s.support} solved tasks)" for s in subprograms]
    meta = [{"program": sep.join(map(str, s.steps)), "support": s.support, "sources": list(s.sources),
             "primitives": [str(x).split("(")[0] for x in s.steps]} for s in subprograms]
    parents = [[solution_ids[t] for t in s.sources if t in solution_ids] for s in subprograms]
    kw = {} if own is None else {"own_embedding": own(len(subprograms))}
    return list(memory.add_many(texts, kind=kind, metadata=meta, parents=parents, **kw))
