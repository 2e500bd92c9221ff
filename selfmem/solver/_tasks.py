"""Task types: how a family of tasks is shown to the memory and the model, and how answers are checked.

A :class:`TaskType` renders a task as text (what is embedded, searched and put in the prompt),
parses a model's answer from its output, verifies an answer, and describes a verified answer for
the memory. :class:`QATaskType` ships here (exact match or a callable check); the ARC task type
lives in ``selfmem.solver.arc``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from .._errors import InvalidInputError

__all__ = ["TaskType", "Verdict", "QATask", "QATaskType"]


@dataclass(frozen=True)
class Verdict:
    """The outcome of checking one answer.

    Attributes
    ----------
    ok : bool
        The answer solves the task.
    score : float
        In [0, 1]; 1 for a solved task, partial credit otherwise (task-type specific).
    detail : str
        What the verifier checked or found (recorded with the attempt).
    """

    ok: bool
    score: float
    detail: str = ""


@runtime_checkable
class TaskType(Protocol):
    """What the solver loop needs to know about a family of tasks."""

    name: str

    def task_id(self, task: Any) -> str: ...

    def render(self, task: Any) -> str: ...

    def parse(self, output: str) -> Any: ...

    def verify(self, task: Any, answer: Any) -> Verdict: ...

    def describe(self, task: Any, answer: Any) -> str: ...


@dataclass(frozen=True)
class QATask:
    """A question with an expected answer (or a check).

    Attributes
    ----------
    id : str
        Unique task id (recorded as ``task_id`` in the memory).
    question : str
    answer : str, optional
        Expected answer for exact-match verification (case, spaces and punctuation at the ends ignored).
    check : callable, optional
        ``check(answer) -> bool`` used instead of ``answer`` when given.
    """

    id: str
    question: str
    answer: str | None = None
    check: Callable[[str], bool] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for name in ("id", "question"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise InvalidInputError(f"QATask.{name} must be a non-empty str, got {value!r}")
        if self.answer is None and self.check is None:
            raise InvalidInputError(f"QATask {self.id!r} needs an answer or a check")
        if self.check is not None and not callable(self.check):
            raise InvalidInputError(f"QATask {self.id!r}: check must be callable")


def _normal(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold().strip()
    return re.sub(r"\s+", " ", text).strip(" .!?\"'`")


class QATaskType:
    """Questions answered in text: the answer is the output's first line after an optional ``Answer:``.

    Examples
    --------
    >>> qa = QATaskType()
    >>> task = QATask("capital-fr", "What is the capital of France?", answer="Paris")
    >>> qa.verify(task, qa.parse("Answer: paris.")).ok
    True
    """

    name = "qa"

    def task_id(self, task: QATask) -> str:
        return task.id

    def render(self, task: QATask) -> str:
        return f"Question: {task.question}\nReply with the answer only."

    def parse(self, output: str) -> str:
        lines = [ln.strip() for ln in output.strip().splitlines() if ln.strip()]
        first = lines[0] if lines else ""
        return re.sub(r"^(final\s+)?answer\s*[:\-]\s*", "", first, flags=re.I).strip()

    def verify(self, task: QATask, answer: str) -> Verdict:
        if task.check is not None:
            ok = bool(task.check(answer))
            return Verdict(ok, 1.0 if ok else 0.0, "custom check")
        ok = _normal(answer) == _normal(task.answer or "")
        return Verdict(ok, 1.0 if ok else 0.0, "exact match")

    def describe(self, task: QATask, answer: str) -> str:
        return f"Question: {task.question}\nAnswer: {answer}"
