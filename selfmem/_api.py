"""The memory protocol: what a solver may call on a memory, wherever it lives.

:class:`selfmem.Memory` (a directory on this machine) implements it; so does any client of a memory
that lives elsewhere (a server), with the same arguments, result types and ``SelfmemError``
subclasses. Solvers (``MemorySolver``, ``ARCSolver``) take a ``MemoryAPI``, not the class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ._config import MemoryConfig
from ._types import Enriched, Hit, Record, Stats, Subgraph, Topic

if TYPE_CHECKING:  # annotations only
    import numpy as np

__all__ = ["MemoryAPI"]


@runtime_checkable
class MemoryAPI(Protocol):
    """Add, read, search and walk one memory (see :class:`selfmem.Memory` for each method's documentation)."""

    config: MemoryConfig
    """The memory's configuration (kinds, search and graph settings)."""

    def add(self, text: str, kind: str = "output", metadata: Mapping[str, object] | None = None, *,
            session: str | None = None, importance: float = 1.0, parents: Sequence[int] = (),
            own_embedding: np.ndarray | None = None, created_at: datetime | None = None,
            key: str | None = None) -> int: ...

    def add_many(self, texts: Sequence[str], kind: str | Sequence[str] = "output",
                 metadata: Sequence[Mapping[str, object] | None] | None = None, *,
                 session: str | None = None, importance: float | Sequence[float] = 1.0,
                 parents: Sequence[Sequence[int]] | None = None,
                 own_embedding: np.ndarray | Sequence[np.ndarray] | None = None,
                 progress: bool | None = None,
                 created_at: datetime | Sequence[datetime] | None = None,
                 keys: Sequence[str | None] | None = None) -> list[int]: ...

    def get(self, id: int) -> Record: ...

    def delete(self, ids: int | Sequence[int]) -> None: ...

    def search(self, query: str, k: int = 5, *, kinds: Sequence[str] | None = None,
               sessions: Sequence[str] | None = None, where: Mapping[str, object] | None = None,
               since: datetime | None = None, until: datetime | None = None,
               max_distance: float | None = None, mode: str | None = None,
               expand: bool | Sequence[str] | None = None) -> list[Hit]: ...

    def enrich(self, prompt: str, k: int = 5, *, budget_tokens: int | None = None, mark_used: bool = True,
               order: str = "time", **search: object) -> Enriched: ...

    def topics(self) -> list[Topic]: ...

    def topic(self, id: int) -> Topic: ...

    def neighbours(self, node: int | str, rel: str | Sequence[str] | None = None, *, direction: str = "both",
                   depth: int = 1, limit: int = 100) -> Subgraph: ...

    def path(self, a: int | str, b: int | str, *, max_depth: int = 4,
             rel: str | Sequence[str] | None = None) -> Subgraph | None: ...

    def subgraph(self, nodes: Sequence[int | str], *, depth: int = 1, rel: str | Sequence[str] | None = None,
                 limit: int = 1000) -> Subgraph: ...

    def stats(self) -> Stats: ...

    def session(self, name: str) -> AbstractContextManager[str]: ...

    def wait(self) -> None: ...

    def close(self) -> None: ...
