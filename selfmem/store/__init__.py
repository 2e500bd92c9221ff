"""Durable storage: the :class:`Store` protocol, its DuckDB and PostgreSQL stores (every SQL statement lives here).

``DuckDBStore`` (one file per memory directory) is the embedded default, ``PostgresStore`` the shared one;
both are ``SqlStore`` (``_sql``: the statements they share, written once) plus their connection handling;
the graph's tables (``_graph_tables``, reached through ``store.graph``) are written once for both, with
the engines' differences in a ``Dialect`` (``_dialect``); the rows that leave the store are named tuples
(``_protocol``: ``PageRow``, ``SessionSummary``; the graph's ``Row``); driver errors become SelfmemErrors
in one place (``_errors``). The read view (``_readview``) publishes a DuckDB store as Parquet files that
readers open without a lock; ``_where`` turns metadata filters into SQL.
"""

from ._duckdb import DATABASE_ERRORS, SCHEMA_VERSION, DuckDBStore, refused, snapshot
from ._errors import database_errors, driver_errors, unreachable
from ._protocol import Store


def open_postgres(url: str, schema: str, *, read_only: bool = False) -> Store:
    """A PostgreSQL store (``selfmem[postgres]``), imported only when asked for."""
    from ._postgres import PostgresStore

    return PostgresStore(url, schema, read_only=read_only)

__all__ = ["Store", "DuckDBStore", "SCHEMA_VERSION", "DATABASE_ERRORS", "snapshot", "open_postgres", "refused",
           "driver_errors", "unreachable", "database_errors"]
