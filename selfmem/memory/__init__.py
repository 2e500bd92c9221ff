"""The Memory facade, the durable DuckDB store, records and sessions."""

from ._config import EmbeddingConfig, IndexConfig, MemoryConfig, SearchConfig
from ._memory import Memory
from ._records import Hit, Record, Stats

__all__ = ["Memory", "MemoryConfig", "EmbeddingConfig", "IndexConfig", "SearchConfig", "Record", "Hit", "Stats"]
