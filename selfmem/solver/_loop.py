"""The memory loop: retrieve and enrich, generate, verify, record — for any task type, across sessions.

For each task ``MemorySolver.solve``:

1. renders the task (:class:`~selfmem.solver.TaskType`) and asks the memory for the most relevant
   past outputs, tasks and solutions: ``memory.enrich(text, k, budget_tokens)``;
2. generates up to ``attempts`` answers from the enriched prompt and verifies each (stopping at the
   first verified one);
3. records, in **one** ``add_many`` (one transaction: nothing half-recorded), every LLM output
   (``kind="output"``, ``parents=`` the memories that enriched its prompt, metadata: task id,
   attempt, verified, score, model, tokens), the task (``kind="task"``, once per task id) and, when
   solved, what solved it (``kind="solution"``, metadata ``solves=<task id>``: a retrieved task leads
   to its solution through that key; the knowledge graph will add a SOLVES edge);
4. weights them by outcome: a verified solution has importance 2, a verified output 1, a failed
   output 0.3; a failed output already stored for the task (same text) is not stored again, and at
   most ``keep_failures`` distinct failures are kept per task.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .._errors import InvalidInputError, LLMError, SelfmemError, TaskTypeError
from .._progress import bar, show_progress
from ._llm import LLM, Generation
from ._tasks import TaskType, Verdict

__all__ = ["MemorySolver", "SolveResult", "Attempt"]

IMPORTANCE = {"solution": 2.0, "verified": 1.0, "failed": 0.3, "task": 1.0}


@dataclass(frozen=True)
class Attempt:
    """One generation and what became of it.

    Attributes
    ----------
    generation : Generation
    answer : str
        The parsed answer as text ("" when it could not be parsed).
    verdict : Verdict
    """

    generation: Generation
    answer: str
    verdict: Verdict


@dataclass(frozen=True)
class SolveResult:
    """What ``MemorySolver.solve`` did for one task.

    Attributes
    ----------
    task_id : str
    solved : bool
    answer : str or None
        The verified answer's text.
    attempts : tuple of Attempt
    context : tuple of int
        Ids of the memories placed in the prompt.
    recorded : tuple of int
        Ids of the records written for this task.
    retrieve_s, generate_s, record_s : float
        Time in retrieval (enrich), generation (with parsing and verification) and recording.
    """

    task_id: str
    solved: bool
    answer: str | None
    attempts: tuple[Attempt, ...]
    context: tuple[int, ...]
    recorded: tuple[int, ...]
    retrieve_s: float
    generate_s: float
    record_s: float


class MemorySolver:
    """Solve a stream of tasks with an LLM, remembering every output and every solved task.

    Parameters
    ----------
    llm : LLM
        Any backend (``TransformersLLM``, ``OpenAICompatibleLLM``, or your own).
    memory : MemoryAPI
        The memory to read and record into (a second run in a new process starts with it all).
    task_type : TaskType
    k : int
        Memories placed in each prompt.
    budget_tokens : int, optional
        Token budget of the enriched prompt (whole memories are cut to fit).
    attempts : int
        Generations per task (the first verified one wins; seeds ``seed``, ``seed + 1``, ...).
    max_tokens, temperature, seed
        Generation settings (``temperature=0``: greedy and deterministic).
    keep_failures : int
        Distinct failed outputs kept per task id (across sessions).
    """

    def __init__(self, llm: LLM, memory: Any, task_type: TaskType, *, k: int = 5, budget_tokens: int | None = None,
                 attempts: int = 1, max_tokens: int = 256, temperature: float = 0.0, seed: int = 0,
                 keep_failures: int = 3) -> None:
        from .._api import MemoryAPI

        if not isinstance(llm, LLM):
            raise InvalidInputError("llm must implement the LLM protocol (name, generate, generate_many)")
        if not isinstance(memory, MemoryAPI):
            raise InvalidInputError(f"memory must be a selfmem.Memory (or another MemoryAPI), got "
                                    f"{type(memory).__name__}")
        if not isinstance(task_type, TaskType):
            raise InvalidInputError("task_type must implement the TaskType protocol (task_id, render, parse, verify, "
                                    "describe)")
        for name, value, low in (("k", k, 1), ("attempts", attempts, 1), ("max_tokens", max_tokens, 1),
                                 ("keep_failures", keep_failures, 0), ("seed", seed, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InvalidInputError(f"{name} must be an integer >= {low}, got {value!r}")
        if budget_tokens is not None and (isinstance(budget_tokens, bool) or not isinstance(budget_tokens, int)
                                          or budget_tokens < 1):
            raise InvalidInputError(f"budget_tokens must be an integer >= 1 or None, got {budget_tokens!r}")
        self.llm, self.memory, self.task_type = llm, memory, task_type
        self.k, self.budget_tokens, self.attempts = k, budget_tokens, attempts
        self.max_tokens, self.temperature, self.seed, self.keep_failures = max_tokens, temperature, seed, keep_failures

    def solve_all(self, tasks: Iterable[Any], *, session: str | None = None, progress: bool | None = None
                  ) -> list[SolveResult]:
        """Solve tasks in order (inside ``memory.session(session)`` when given); one result per task."""
        tasks = list(tasks)
        if session is None:
            return [self.solve(t) for t in bar(tasks, enabled=show_progress(progress, len(tasks), 2), desc="tasks")]
        with self.memory.session(session):
            return self.solve_all(tasks, progress=progress)

    def solve(self, task: Any) -> SolveResult:
        """Retrieve, generate, verify and record one task (see the module docstring)."""
        tid, text = self._call("render", lambda: (str(self.task_type.task_id(task)), self.task_type.render(task)))
        if not isinstance(text, str) or not text.strip():
            raise TaskTypeError(f"task type {self.task_type.name!r} rendered task {tid!r} as empty text")
        t0 = time.perf_counter()
        enriched = self.memory.enrich(text, self.k, budget_tokens=self.budget_tokens)
        context = tuple(h.record.id for h in enriched.hits)
        t1 = time.perf_counter()
        attempts: list[Attempt] = []
        for i in range(self.attempts):
            gen = self._generate(enriched.prompt, self.seed + i)
            try:
                answer = self.task_type.parse(gen.text)
            except (ValueError, TypeError, KeyError, IndexError, SelfmemError) as exc:
                attempts.append(Attempt(gen, "", Verdict(False, 0.0, f"unparsable output: {exc}")))
                continue
            verdict = self._call("verify", lambda answer=answer: self.task_type.verify(task, answer), tid)
            if not isinstance(verdict, Verdict):
                raise TaskTypeError(f"task type {self.task_type.name!r}: verify() must return a Verdict, "
                                    f"got {type(verdict).__name__}")
            attempts.append(Attempt(gen, str(answer), verdict))
            if verdict.ok:
                description = self._call("describe", lambda answer=answer: self.task_type.describe(task, answer),
                                         tid)
                break
        t2 = time.perf_counter()
        solved = bool(attempts and attempts[-1].verdict.ok)
        recorded = self._record(tid, text, attempts, context, description if solved else None)
        t3 = time.perf_counter()
        return SolveResult(task_id=tid, solved=solved, answer=attempts[-1].answer if solved else None,
                           attempts=tuple(attempts), context=context, recorded=tuple(recorded),
                           retrieve_s=t1 - t0, generate_s=t2 - t1, record_s=t3 - t2)

    # -- steps ----------------------------------------------------------------------
    def _call(self, what: str, fn: Any, tid: str = "?") -> Any:
        """Run task-type code; anything it raises becomes a TaskTypeError (nothing is recorded then)."""
        try:
            return fn()
        except SelfmemError:
            raise
        except Exception as exc:  # user code: report it as ours, with the cause attached
            raise TaskTypeError(f"task type {getattr(self.task_type, 'name', '?')!r} failed to {what} task "
                                f"{tid!r}: {type(exc).__name__}: {exc}; nothing was recorded for it") from exc

    def _generate(self, prompt: str, seed: int) -> Generation:
        try:
            gen = self.llm.generate(prompt, max_tokens=self.max_tokens, temperature=self.temperature, seed=seed)
        except SelfmemError:
            raise
        except Exception as exc:  # a third-party backend's own failure
            raise LLMError(f"the LLM backend {getattr(self.llm, 'name', '?')!r} raised {type(exc).__name__}: {exc}"
                           ) from exc
        if not isinstance(gen, Generation):
            raise LLMError(f"the LLM backend returned {type(gen).__name__}, not a Generation")
        return gen

    def _record(self, tid: str, text: str, attempts: Sequence[Attempt], context: tuple[int, ...],
                solution: str | None) -> list[int]:
        kinds = set(self.memory.config.kinds)
        missing = {"output", "task", "solution"} - kinds
        if missing:
            raise InvalidInputError(f"the memory's kinds lack {sorted(missing)}; add them to MemoryConfig.kinds")
        stored = [h.record for h in self.memory.search(text, k=100, where={"task_id": tid})]  # what this task left
        stored_failures = {r.text for r in stored if r.kind == "output" and not r.metadata.get("verified")}
        room = max(self.keep_failures - len(stored_failures), 0)
        rows: list[tuple[str, str, dict[str, Any], float, tuple[int, ...]]] = []
        for i, a in enumerate(attempts):
            g = a.generation
            meta = {"task_id": tid, "task_type": self.task_type.name, "attempt": i, "verified": a.verdict.ok,
                    "score": float(a.verdict.score), "detail": a.verdict.detail, "model": g.model,
                    "prompt_tokens": g.prompt_tokens, "completion_tokens": g.completion_tokens,
                    "finish_reason": g.finish_reason}
            if not a.verdict.ok:
                if not g.text.strip() or g.text in stored_failures or room == 0:
                    continue  # merged: this failure is already remembered (or enough of them are)
                stored_failures.add(g.text)
                room -= 1
            rows.append(("output", g.text, meta, IMPORTANCE["verified" if a.verdict.ok else "failed"], context))
        if not any(r.kind == "task" for r in stored):
            rows.append(("task", text, {"task_id": tid, "task_type": self.task_type.name,
                                        "solved": solution is not None}, IMPORTANCE["task"], ()))
        if solution is not None and solution not in {r.text for r in stored if r.kind == "solution"}:
            best = attempts[-1]
            rows.append(("solution", solution, {"task_id": tid, "solves": tid, "task_type": self.task_type.name,
                                                "verified_by": best.verdict.detail, "score": float(best.verdict.score),
                                                "model": best.generation.model}, IMPORTANCE["solution"], context))
        if not rows:
            return []
        return self.memory.add_many([r[1] for r in rows], kind=[r[0] for r in rows], metadata=[r[2] for r in rows],
                                    importance=[r[3] for r in rows], parents=[list(r[4]) for r in rows])
