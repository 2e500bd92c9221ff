"""selfmem: a self-organising memory for LLM task solvers.

>>> from selfmem import EmbeddingConfig, Memory, MemoryConfig
>>> fast = MemoryConfig(embedding=EmbeddingConfig(general="hash:64", own=None, mode="general"))
>>> with Memory(tmp / "notes", fast) as mem:     # MemoryConfig() (the default) uses the real models
...     rid = mem.add("The grid is rotated 90 degrees clockwise.", kind="output")
...     [h.record.id for h in mem.search("rotation of the grid", k=5)] == [rid]
True
"""

import importlib
from typing import TYPE_CHECKING

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
    MemoryForkedError,
    MemoryLockedError,
    ModelLoadError,
    ReadOnlyError,
    RefitError,
    RecordNotFoundError,
    SelfmemError,
    StorageError,
    TaskTypeError,
)
if TYPE_CHECKING:  # the names below load on first use (``__getattr__``); type checkers see them here
    from ._api import MemoryAPI
    from ._config import EmbeddingConfig, GraphConfig, IndexConfig, MemoryConfig, SearchConfig, TopicsConfig
    from ._types import Checkup, Edge, Enriched, Finding, Hit, Node, Points, Record, Stats, Subgraph, Topic
    from .memory import Memory
    from .memory._doctor import doctor
    from .retrieval import Embedder, HashEmbedder
    from .server import RemoteMemory
    from .viz import MapInfo, memory_map

__version__ = "0.1.0"

# Every public name but the errors loads on first use (PEP 562), so that a light user of the package
# (``memctl ... --url`` through the server's client, ``selfmem.retrieval`` without DuckDB and FAISS) pays
# only for what it touches: the memory facade pulls in DuckDB and FAISS, the embedders numpy.
_LAZY = {
    **dict.fromkeys(("EmbeddingConfig", "GraphConfig", "IndexConfig", "MemoryConfig", "SearchConfig",
                     "TopicsConfig"), "._config"),
    "MemoryAPI": "._api",
    **dict.fromkeys(("Checkup", "Edge", "Enriched", "Finding", "Hit", "Node", "Points", "Record", "Stats",
                     "Subgraph", "Topic"), "._types"),
    "Embedder": ".retrieval", "HashEmbedder": ".retrieval",
    "Memory": ".memory", "doctor": ".memory._doctor", "RemoteMemory": ".server",
    "memory_map": ".viz", "MapInfo": ".viz",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'selfmem' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups find it without calling here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


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
    "MemoryForkedError",
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
