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
    ReadOnlyError,
    RecordNotFoundError,
    SelfmemError,
)
from .retrieval import Embedder, HashEmbedder

__version__ = "0.1.0"

_FROM_MEMORY = ("Memory", "MemoryConfig", "EmbeddingConfig", "IndexConfig", "SearchConfig", "TopicsConfig", "Topic", "Record", "Hit", "Stats")


def __getattr__(name: str):
    # The memory facade pulls in DuckDB and FAISS; import it on first use so that
    # ``selfmem.retrieval`` (embedders only) works without them.
    if name in _FROM_MEMORY:
        from . import memory

        return getattr(memory, name)
    raise AttributeError(f"module 'selfmem' has no attribute {name!r}")

__all__ = [
    "Memory",
    "MemoryConfig",
    "EmbeddingConfig",
    "IndexConfig",
    "SearchConfig",
    "TopicsConfig",
    "Topic",
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
    "ReadOnlyError",
    "EmbedderMismatchError",
    "ConfigError",
    "CorruptMemoryError",
    "DependencyError",
    "ModelLoadError",
]
