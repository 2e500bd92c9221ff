"""The Memory facade, the durable DuckDB store, records and sessions."""

from ._config import EmbeddingConfig, IndexConfig, MemoryConfig
from ._memory import Memory
from ._records import Hit, Record, Stats

__all__ = ["Memory", "MemoryConfig", "EmbeddingConfig", "IndexConfig", "Record", "Hit", "Stats"]
