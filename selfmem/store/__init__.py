"""Durable storage: the :class:`Store` protocol and its DuckDB implementation (every SQL statement lives here).

``DuckDBStore`` (one file per memory directory) is the embedded default; the read view
(``_readview``) publishes a DuckDB store as Parquet files that readers open without a lock; ``_where``
turns metadata filters into SQL. The graph's tables are reached through ``store.graph``.
"""

import sys

from ._duckdb import DATABASE_ERRORS, SCHEMA_VERSION, DuckDBStore, refused, snapshot
from ._protocol import Store


def driver_errors() -> tuple[type[Exception], ...]:
    """The errors the database drivers raise themselves: DuckDB's, and psycopg's once a PostgreSQL store was
    opened (so that callers map both to SelfmemErrors)."""
    psycopg = sys.modules.get("psycopg")
    return DATABASE_ERRORS + ((psycopg.Error,) if psycopg is not None else ())


def unreachable(exc: BaseException) -> bool:
    """True for a driver error that says the database server could not be reached or dropped the connection."""
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))


def open_postgres(url: str, schema: str, *, read_only: bool = False) -> Store:
    """A PostgreSQL store (``selfmem[postgres]``), imported only when asked for."""
    from ._postgres import PostgresStore

    return PostgresStore(url, schema, read_only=read_only)

__all__ = ["Store", "DuckDBStore", "SCHEMA_VERSION", "DATABASE_ERRORS", "snapshot", "open_postgres", "refused",
           "driver_errors", "unreachable"]
