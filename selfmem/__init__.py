"""selfmem: a self-organising memory for LLM task solvers.

>>> from selfmem import Memory
>>> with Memory("runs/mem") as mem:                       # doctest: +SKIP
...     rid = mem.add("The grid is rotated 90 degrees clockwise.", kind="output")
...     hits = mem.search("rotation of the grid", k=5)
"""

from ._errors import (
    ConfigError,
    CorruptMemoryError,
    DependencyError,
    EmbedderMismatchError,
    InvalidInputError,
    MemoryClosedError,
    MemoryLockedError,
    ModelLoadError,
    RecordNotFoundError,
    SelfmemError,
)
from .memory import EmbeddingConfig, Hit, IndexConfig, Memory, MemoryConfig, Record, Stats
from .retrieval import Embedder, HashEmbedder

__version__ = "0.1.0"

__all__ = [
    "Memory",
    "MemoryConfig",
    "EmbeddingConfig",
    "IndexConfig",
    "Record",
    "Hit",
    "Stats",
    "Embedder",
    "HashEmbedder",
    "SelfmemError",
    "InvalidInputError",
    "RecordNotFoundError",
    "MemoryClosedError",
    "MemoryLockedError",
    "EmbedderMismatchError",
    "ConfigError",
    "CorruptMemoryError",
    "DependencyError",
    "ModelLoadError",
]
