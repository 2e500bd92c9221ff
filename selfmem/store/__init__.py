"""Durable storage: the :class:`Store` protocol and its DuckDB implementation (every SQL statement lives here).

``DuckDBStore`` (one file per memory directory) is the embedded default; the read view
(``_readview``) publishes a DuckDB store as Parquet files that readers open without a lock; ``_where``
turns metadata filters into SQL. The graph's tables are reached through ``store.graph``.
"""

from ._duckdb import DATABASE_ERRORS, SCHEMA_VERSION, DuckDBStore, refused, snapshot
from ._protocol import Store


def open_postgres(url: str, schema: str, *, read_only: bool = False) -> Store:
    """A PostgreSQL store (``selfmem[postgres]``), imported only when asked for."""
    from ._postgres import PostgresStore

    return PostgresStore(url, schema, read_only=read_only)

__all__ = ["Store", "DuckDBStore", "SCHEMA_VERSION", "DATABASE_ERRORS", "snapshot", "open_postgres", "refused"]
