"""The memory-guided ARC solver: retrieve similar solved tasks, search, verify, record.

For each task :class:`ARCSolver`:

1. searches the memory with the task text (``describe_task``; both embeddings in a dual memory) for
   solutions and failed searches of similar tasks; each solution's program becomes a seed weighted
   ``w = 1 / (d + eps)``, each failure's closest program a seed of half that weight;
2. optionally asks an LLM (through :class:`~selfmem.solver.MemorySolver` and an enriched prompt) for a
   program, which joins the seeds;
3. runs the program search (:func:`search_task`) in a worker process, up to ``workers`` tasks at once;
4. records in one ``add_many``: the task (``kind="task"``), and either its solution (``kind="solution"``,
   metadata ``program``, ``solves``, nodes, and ``parents=`` the memories whose seed solved it) or the
   failed search (``kind="output"``, ``verified=False``, what was tried and the closest programs).

Results are recorded as tasks finish, and each task's retrieval happens when it is submitted, so a
task sees every task finished before it started (with 2 workers, all but at most one earlier task).
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..._errors import InvalidInputError
from ..._progress import bar, show_progress
from ._abstractions import abstraction_sources
from ._dsl import Program
from ._experience import ExperiencePrior, PriorSettings
from ._features import FEATURE_DIM, transformation_features
from ._grid import ARCTask
from ._search import Guidance, SearchResult, SearchSettings, Seed, kept_at, search_task
from ._task import TEXT_STYLES, ARCTaskType, describe_task, score_predictions

__all__ = ["ARCSolver", "ARCResult"]

IMPORTANCE = {"solution": 2.0, "task": 1.0, "failed": 0.3, "experience": 0.1}


@dataclass(frozen=True)
class ARCResult:
    """What the solver did for one task.

    Attributes
    ----------
    task_id : str
    score : float or None
        Competition score (share of test inputs answered by one of 2 attempts); None without test outputs.
    programs : tuple of str
        Programs verified on every train pair (one per attempt).
    nodes, nodes_to_solution, seconds
        Search effort (``nodes_to_solution`` is None when unsolved).
    source : str
        ``"seed"`` (a remembered program), ``"edit"`` (one typed edit of one), ``"search"`` or "".
    seed_task : str
        The remembered task whose program led to the solution ("" if none).
    seed_distance : float or None
        Its cosine distance to this task.
    retrieved : tuple of (str, float)
        The remembered tasks the memory offered, with distances.
    recorded : tuple of int
        Ids of the records written.
    found_at : tuple of int
        For each program, the smallest node budget under which the search finds it (:class:`SearchResult`).
    scores : tuple of float
        ``scores[k]``: the competition score of the first ``k`` programs' answers, the remaining attempts
        filled by the guesses (None without test outputs); with ``found_at``, :meth:`score_at` gives the
        score at any smaller budget.
    guesses : tuple of str
        The cell classifiers' guesses (:class:`SearchResult` ``guesses``): they answer the attempts no
        program takes, and are not recorded as solutions.
    """

    task_id: str
    score: float | None
    programs: tuple[str, ...]
    nodes: int
    nodes_to_solution: int | None
    seconds: float
    source: str
    seed_task: str
    seed_distance: float | None
    retrieved: tuple[tuple[str, float], ...]
    recorded: tuple[int, ...]
    found_at: tuple[int, ...] = ()
    scores: tuple[float | None, ...] = ()
    guesses: tuple[str, ...] = ()

    def score_at(self, budget: int, extra: float = SearchSettings.extra) -> float | None:
        """The score a search of this task at ``budget`` nodes (<= this one's) would have had."""
        if self.score is None:
            return None
        kept = kept_at(self.found_at, self.nodes_to_solution, budget, extra)
        return self.scores[kept] if self.scores else 0.0

    @property
    def solved(self) -> bool:
        """All test inputs answered (a full competition point)."""
        return self.score == 1.0


class ARCSolver:
    """Solve ARC tasks by program search, guided by and recorded into a memory.

    Parameters
    ----------
    memory : Memory or None
        Where similar solved tasks come from and results go; None for an unguided search.
    settings : SearchSettings
        Node budget and guidance weights.
    k : int
        Memories retrieved per task.
    style : {"features", "grids", "both"}
        The task text (:func:`describe_task`).
    workers : int, optional
        Worker processes for the search (default: all cores; 1 runs in this process).
    record : bool
        Write results into the memory (False: read it only).
    leave_out_self : bool
        Ignore the task's own remembered solution (for tuning on a set the memory has seen).
    programs_first, priors : bool
        The two uses of retrieved programs (for ablations).
    max_distance : float, optional
        Ignore remembered tasks farther than this cosine distance (0.4, chosen on the training set; None: no limit).
    llm : LLM, optional
        Asked for a program from an enriched prompt before the search; a verified one seeds it.
    experience : PriorSettings or None
        Guide the search by the prior of the nearest remembered experiences (transformation embedding,
        :class:`~selfmem.solver.arc.ExperiencePrior`); needs a memory opened with
        :func:`~selfmem.solver.arc.memory_config`. None: task-text retrieval only.
    collect : int
        Hindsight experiences recorded per task (kind ``"experience"``; 0: none). Needs a memory opened
        with :func:`~selfmem.solver.arc.memory_config`.
    text_seeds : bool
        Also retrieve remembered solutions by task text (the seeds of the first version).
    abstractions : bool
        Load the memory's learned abstractions (``kind="abstraction"``) into the search's DSL.
    """

    def __init__(self, memory: Any = None, *, settings: SearchSettings | None = None, k: int = 8,
                 style: str = "both", workers: int | None = None, record: bool = True, leave_out_self: bool = False,
                 programs_first: bool = True, priors: bool = True, max_distance: float | None = 0.4,
                 llm: Any = None, experience: PriorSettings | None = None, collect: int = 0,
                 text_seeds: bool = True, abstractions: bool = False) -> None:
        from ..._api import MemoryAPI

        if memory is not None and not isinstance(memory, MemoryAPI):
            raise InvalidInputError(f"memory must be a selfmem.Memory (or another MemoryAPI) or None, got "
                                    f"{type(memory).__name__}")
        if experience is not None and memory is not None and not hasattr(memory, "export"):
            raise InvalidInputError("the experience prior reads the memory's vectors with export(): pass a "
                                    "selfmem.Memory, or experience=None")
        settings = SearchSettings() if settings is None else settings
        if not isinstance(settings, SearchSettings):
            raise InvalidInputError("settings must be a SearchSettings")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InvalidInputError(f"k must be an integer >= 1, got {k!r}")
        if style not in TEXT_STYLES:
            raise InvalidInputError(f"style must be one of {TEXT_STYLES}, got {style!r}")
        workers = (os.cpu_count() or 1) if workers is None else workers
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise InvalidInputError(f"workers must be an integer >= 1, got {workers!r}")
        if record and memory is not None and getattr(memory, "read_only", False):
            raise InvalidInputError("the memory is read-only: pass record=False to only read it")
        self.memory, self.settings, self.k, self.style, self.workers = memory, settings, k, style, workers
        self.record, self.leave_out_self = record and memory is not None, leave_out_self
        if max_distance is not None and (isinstance(max_distance, bool) or not isinstance(max_distance, (int, float))
                                         or not 0 < max_distance <= 2):
            raise InvalidInputError(f"max_distance must be a cosine distance in (0, 2] or None, got {max_distance!r}")
        self.programs_first, self.priors, self.llm = programs_first, priors, llm
        self.max_distance = max_distance
        if experience is not None and not isinstance(experience, PriorSettings):
            raise InvalidInputError("experience must be a PriorSettings or None")
        if isinstance(collect, bool) or not isinstance(collect, int) or collect < 0:
            raise InvalidInputError(f"collect must be an integer >= 0, got {collect!r}")
        own = None if memory is None else memory.config.embedding.own
        if (experience is not None or (collect and self.record)) and own != f"hash:{FEATURE_DIM}":
            raise InvalidInputError("experience and collect need a memory whose own view is the transformation "
                                    "embedding: open it with config=selfmem.solver.arc.memory_config()")
        self.experience, self.collect, self.text_seeds = experience, collect, text_seeds
        self.prior: ExperiencePrior | None = None
        self.abstractions = abstractions and memory is not None
        self._macros: tuple[tuple[Program, tuple[str, ...]], ...] | None = None
        if collect and self.record:
            self.settings = replace(self.settings, collect=collect)
        self._texts: dict[str, str] = {}  # task id -> text, from retrieval until the task is recorded

    # -- one task ----------------------------------------------------------------------
    def _text(self, task: ARCTask) -> str:
        """The task text, computed once per task: retrieval and recording both use it."""
        if task.id not in self._texts:
            self._texts[task.id] = describe_task(task, self.style)
        return self._texts[task.id]

    def guidance(self, task: ARCTask) -> tuple[Guidance, dict[str, int]]:
        """Seeds for ``task`` from the memory (and the LLM), and the seed task -> record id map."""
        if self.memory is None:
            return Guidance(programs_first=self.programs_first, priors=self.priors), {}
        where = {"task_id": {"$ne": task.id}} if self.leave_out_self else None
        hits = self.memory.search(self._text(task), k=self.k, kinds=["solution", "output"],
                                  where=where, mode="dense", max_distance=self.max_distance,
                                  expand=False) if self.text_seeds else []
        seeds: list[Any] = []
        records: dict[str, Any] = {}
        for h in hits:
            md = h.record.metadata
            texts = [md["program"]] if h.record.kind == "solution" and md.get("program") else \
                [p for p, _ in md.get("near_misses", [])[:1]]
            for text in texts:
                try:
                    program = Program.parse(text)
                except InvalidInputError:
                    continue  # written by another DSL version
                weight = h.weight if h.record.kind == "solution" else 0.5 * h.weight
                seeds.append(Seed(program, weight, str(md.get("task_id", "")), h.distance))
                records.setdefault(str(md.get("task_id", "")), h.record.id)
        if self.llm is not None:
            seeds = self._llm_seed(task) + seeds
        macros: tuple[Program, ...] = ()
        if self.abstractions:
            if self._macros is None:
                self._macros = abstraction_sources(self.memory)
            # leaving the task out: an abstraction needs 2 other tasks (as mine_abstractions' min_support)
            macros = tuple(p for p, src in self._macros
                           if not self.leave_out_self or len(set(src) - {task.id}) >= 2)
        if self.experience is not None:
            if self.prior is None:
                self.prior = ExperiencePrior.from_memory(self.memory, self.experience)
            found = self.prior.guidance(transformation_features(task.train), task.id if self.leave_out_self else None,
                                        seeds=seeds, programs_first=self.programs_first, priors=self.priors)
            return replace(found, abstractions=macros), records
        return Guidance(tuple(seeds), self.programs_first, self.priors, abstractions=macros), records

    def _llm_seed(self, task: ARCTask) -> list[Seed]:
        from .._loop import MemorySolver

        solver = MemorySolver(self.llm, self.memory, ARCTaskType(self.style), k=self.k, max_tokens=64)
        result = solver.solve(task)
        if not result.solved:
            return []
        return [Seed(Program.parse(result.answer or ""), 1e3, "llm", 0.0)]

    def _finish(self, task: ARCTask, guidance: Guidance, records: dict[str, int], found: SearchResult
                ) -> ARCResult:
        retrieved = tuple((s.task_id, round(s.distance, 4)) for s in guidance.seeds)
        distance = next((s.distance for s in guidance.seeds if s.task_id == found.seed_task), None)
        score = None if task.test_outputs is None else score_predictions(task, found.answers())
        scores = tuple(None if task.test_outputs is None else score_predictions(task, found.answers(k))
                       for k in range(len(found.programs) + 1))
        text = self._texts.pop(task.id, None)
        recorded = self._record(task, text or describe_task(task, self.style), found, records) if self.record else ()
        return ARCResult(task.id, score, tuple(str(p) for p in found.programs), found.nodes, found.nodes_to_solution,
                         found.seconds, found.source, found.seed_task, distance, retrieved, tuple(recorded),
                         found.found_at, scores, tuple(str(g) for g in found.guesses))

    def _record(self, task: ARCTask, text: str, found: SearchResult, records: dict[str, int]) -> list[int]:
        memory = self.memory
        assert memory is not None  # recording needs a memory (checked by solve)
        base = {"task_id": task.id, "task_type": "arc"}
        rows: list[tuple[str, str, dict[str, Any], float, list[int]]] = [
            ("task", text, {**base, "solved": bool(found.programs)}, IMPORTANCE["task"], [])]
        if found.programs:
            parent = [records[found.seed_task]] if found.seed_task in records else []
            rows.append(("solution", f"{text}\nsolved by: {found.programs[0]}",
                         {**base, "solves": task.id, "program": str(found.programs[0]),
                          "programs": [str(p) for p in found.programs], "nodes": found.nodes_to_solution,
                          "source": found.source, "seed_task": found.seed_task, "verified_by": "every train pair"},
                         IMPORTANCE["solution"], parent))
        else:
            misses = [[p, round(s, 3)] for p, s in found.near_misses]
            closest = "; ".join(f"{p} ({s:.0%} of cells)" for p, s in misses) or "none had the output's shape"
            rows.append(("output", f"{text}\nsearch failed after {found.nodes} nodes; closest: {closest}",
                         {**base, "verified": False, "nodes": found.nodes, "near_misses": misses},
                         IMPORTANCE["failed"], []))
        own = None
        if memory.config.embedding.own == f"hash:{FEATURE_DIM}":
            feature = transformation_features(task.train)
            own = [feature] * len(rows)
            for program, vector in found.experiences:
                names = Program.parse(program).names
                rows.append(("experience", f"experience: {program.replace(' | ', ' then ')}",
                             {**base, "program": program, "primitives": list(names), "depth": len(names)},
                             IMPORTANCE["experience"], []))
                own.append(vector)
            if self.prior is not None:  # what this session learns guides its next tasks
                solved = [(str(found.programs[0]), feature, True)] if found.programs else []
                exp = [(p, v, False) for p, v in found.experiences] + solved
                if exp:
                    self.prior.extend(np.array([e[1] for e in exp]), [e[0] for e in exp], [task.id] * len(exp),
                                      [e[2] for e in exp])
        return memory.add_many([r[1] for r in rows], kind=[r[0] for r in rows], metadata=[r[2] for r in rows],
                                    importance=[r[3] for r in rows], parents=[r[4] for r in rows],
                                    own_embedding=None if own is None else np.array(own, np.float32))

    # -- many tasks -----------------------------------------------------------------------
    def solve(self, task: ARCTask) -> ARCResult:
        """Retrieve, search and record one task in this process."""
        if not isinstance(task, ARCTask):
            raise InvalidInputError(f"task must be an ARCTask, got {type(task).__name__}")
        guidance, records = self.guidance(task)
        return self._finish(task, guidance, records, search_task(task.train, task.test_inputs, self.settings,
                                                                 guidance))

    def solve_all(self, tasks: Iterable[ARCTask], *, session: str | None = None, progress: bool | None = None,
                  desc: str = "ARC tasks") -> list[ARCResult]:
        """Solve tasks in order, ``workers`` at a time; results in the order of ``tasks``."""
        tasks = list(tasks)
        for t in tasks:
            if not isinstance(t, ARCTask):
                raise InvalidInputError(f"tasks must be ARCTask objects, got {type(t).__name__}")
        if session is not None and self.memory is not None:
            with self.memory.session(session):
                return self.solve_all(tasks, progress=progress, desc=desc)
        shown = bar(total=len(tasks), enabled=show_progress(progress, len(tasks), 2), desc=desc)
        results: list[ARCResult] = []
        try:
            if self.workers == 1:
                for t in tasks:
                    results.append(self.solve(t))
                    shown.update(1)
                return results
            ctx = multiprocessing.get_context("spawn")  # no fork of a process holding model threads
            with ProcessPoolExecutor(self.workers, mp_context=ctx) as pool:
                pending: deque[tuple[ARCTask, Guidance, dict[str, int], Future]] = deque()
                for t in tasks:
                    while len(pending) >= self.workers:
                        results.append(self._finish(*_done(pending.popleft())))
                        shown.update(1)
                    guidance, records = self.guidance(t)
                    pending.append((t, guidance, records, pool.submit(search_task, t.train, t.test_inputs,
                                                                      self.settings, guidance)))
                while pending:
                    results.append(self._finish(*_done(pending.popleft())))
                    shown.update(1)
            return results
        finally:
            shown.close()


def _done(item: tuple[ARCTask, Guidance, dict[str, int], Future]) -> tuple[ARCTask, Guidance, dict[str, int],
                                                                            SearchResult]:
    task, guidance, records, future = item
    return task, guidance, records, future.result()


def summarize(results: Sequence[ARCResult]) -> dict[str, Any]:
    """Solved counts (full tasks and test outputs), nodes and time, for reports."""
    return summarize_rows([{"score": r.score, "programs": r.programs, "nodes_to_solution": r.nodes_to_solution,
                            "seconds": r.seconds} for r in results])


def summarize_rows(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """:func:`summarize` of results as stored in a report (dicts with ``score``, ``programs``, ...)."""
    import statistics

    solved = [r for r in rows if r["score"] == 1.0]
    to_sol = [r["nodes_to_solution"] for r in solved if r["nodes_to_solution"] is not None]
    return {"tasks": len(rows), "solved": len(solved), "score": round(sum(r["score"] or 0 for r in rows), 2),
            "train_verified": sum(bool(r["programs"]) for r in rows),
            "median_nodes_to_solution": statistics.median(to_sol) if to_sol else None,
            "seconds": round(sum(r["seconds"] for r in rows), 1)}
