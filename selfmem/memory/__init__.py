"""The Memory facade, the durable DuckDB store, records and sessions."""

from ._config import EmbeddingConfig, IndexConfig, MemoryConfig, SearchConfig, TopicsConfig
from ._memory import Memory
from ._records import Hit, Record, Stats, Topic

__all__ = ["Memory", "MemoryConfig", "EmbeddingConfig", "IndexConfig", "SearchConfig", "TopicsConfig", "Topic", "Record", "Hit", "Stats"]
