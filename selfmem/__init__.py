"""selfmem: a self-organising memory for LLM task solvers.

>>> from selfmem import EmbeddingConfig, Memory, MemoryConfig
>>> fast = MemoryConfig(embedding=EmbeddingConfig(general="hash:64", own=None, mode="general"))
>>> with Memory(tmp / "notes", fast) as mem:     # MemoryConfig() (the default) uses the real models
...     rid = mem.add("The grid is rotated 90 degrees clockwise.", kind="output")
...     [h.record.id for h in mem.search("rotation of the grid", k=5)] == [rid]
True
"""

from ._errors import (
    ConfigError,
    CorruptMemoryError,
    DependencyError,
    EmbedderMismatchError,
    GraphError,
    InvalidInputError,
    LLMError,
    LLMResponseError,
    LLMUnavailableError,
    MemoryClosedError,
    MemoryLockedError,
    ModelLoadError,
    ReadOnlyError,
    RefitError,
    RecordNotFoundError,
    SelfmemError,
    StorageError,
    TaskTypeError,
)
from ._config import EmbeddingConfig, GraphConfig, IndexConfig, MemoryConfig, SearchConfig, TopicsConfig
from ._api import MemoryAPI
from ._types import Checkup, Edge, Enriched, Finding, Hit, Node, Points, Record, Stats, Subgraph, Topic
from .retrieval import Embedder, HashEmbedder

__version__ = "0.1.0"


def __getattr__(name: str):
    # The memory facade pulls in DuckDB and FAISS; import it on first use so that
    # ``selfmem.retrieval`` (embedders only) works without them.
    if name == "Memory":
        from .memory import Memory

        return Memory
    if name == "doctor":
        from .memory._doctor import doctor

        return doctor
    if name == "RemoteMemory":
        from .server import RemoteMemory

        return RemoteMemory
    if name in ("memory_map", "MapInfo"):
        from . import viz

        return getattr(viz, name)
    raise AttributeError(f"module 'selfmem' has no attribute {name!r}")

__all__ = [
    "Memory",
    "MemoryAPI",
    "RemoteMemory",
    "MemoryConfig",
    "EmbeddingConfig",
    "IndexConfig",
    "SearchConfig",
    "TopicsConfig",
    "GraphConfig",
    "Topic",
    "Node",
    "Edge",
    "Subgraph",
    "Record",
    "Hit",
    "Enriched",
    "Stats",
    "Finding",
    "Checkup",
    "Points",
    "MapInfo",
    "doctor",
    "memory_map",
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
    "StorageError",
    "RefitError",
    "DependencyError",
    "GraphError",
    "ModelLoadError",
    "LLMError",
    "LLMUnavailableError",
    "LLMResponseError",
    "TaskTypeError",
]
