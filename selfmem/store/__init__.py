"""Durable storage: the :class:`Store` protocol and its DuckDB implementation (every SQL statement lives here).

``DuckDBStore`` (one file per memory directory) is the embedded default; the read view
(``_readview``) publishes a DuckDB store as Parquet files that readers open without a lock; ``_where``
turns metadata filters into SQL. The graph's tables are reached through ``store.graph``.
"""

from ._duckdb import DATABASE_ERRORS, SCHEMA_VERSION, DuckDBStore, snapshot
from ._protocol import Store

__all__ = ["Store", "DuckDBStore", "SCHEMA_VERSION", "DATABASE_ERRORS", "snapshot"]
