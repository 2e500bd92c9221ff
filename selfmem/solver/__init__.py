"""The solver side: LLM backends, task types and the memory loop.

``MemorySolver(llm, memory, task_type)`` retrieves what the memory knows about a task, generates,
verifies and records every output and every solved task. Backends: :class:`TransformersLLM` (a local
causal LM, SmolLM2 by default, sharing its weights with the own-model embedder) and
:class:`OpenAICompatibleLLM` (any OpenAI-compatible server). Task types: :class:`QATaskType` here,
ARC in ``selfmem.solver.arc``. Any program-search solver can keep its programs in a memory and reuse them
(:func:`remember_program`, :func:`remembered_programs`, :func:`program_edits`, :func:`common_subprograms`).
"""

from ._llm import LLM, Generation
from ._loop import Attempt, MemorySolver, SolveResult
from ._openai_llm import OpenAICompatibleLLM
from ._programs import (
    RememberedProgram,
    Subprogram,
    common_subprograms,
    program_edits,
    remember_program,
    remember_subprograms,
    remembered_programs,
    step_edits,
)
from ._tasks import QATask, QATaskType, TaskType, Verdict
from ._transformers_llm import TransformersLLM

__all__ = ["LLM", "Generation", "TransformersLLM", "OpenAICompatibleLLM", "TaskType", "Verdict", "QATask",
           "QATaskType", "MemorySolver", "SolveResult", "Attempt", "RememberedProgram", "Subprogram",
           "remember_program", "remembered_programs", "program_edits", "step_edits", "common_subprograms",
           "remember_subprograms"]
