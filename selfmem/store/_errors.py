"""Database errors to SelfmemErrors: what each engine's driver raises, mapped for both engines in one place.

:func:`database_errors` wraps every public call of a memory (``selfmem.memory._state.guarded``): an error
the driver or the file system raised itself becomes a :class:`StorageError` (the server could not be
reached; the file system refused a write) or a :class:`CorruptMemoryError` (a damaged block), each saying
what to do. The stores raise SelfmemErrors of their own where they know more (a refused connection, a
unique key taken by another writer).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .._errors import CorruptMemoryError, SelfmemError, StorageError
from ._duckdb import DATABASE_ERRORS, refused

__all__ = ["driver_errors", "unreachable", "refused", "database_errors"]


def driver_errors() -> tuple[type[Exception], ...]:
    """The errors the database drivers raise themselves: DuckDB's, and psycopg's once a PostgreSQL store was
    opened (so that callers map both to SelfmemErrors)."""
    psycopg = sys.modules.get("psycopg")
    return DATABASE_ERRORS + ((psycopg.Error,) if psycopg is not None else ())


def unreachable(exc: BaseException) -> bool:
    """True for a driver error that says the database server could not be reached or dropped the connection."""
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))


@contextmanager
def database_errors(directory: Path) -> Iterator[None]:
    """Turn an error the database or the file system raised itself into a StorageError when the file system
    refused (read-only, full, no permission), else into a CorruptMemoryError (a damaged block), each saying
    what to do."""
    try:
        yield
    except SelfmemError:
        raise
    except driver_errors() + (OSError,) as exc:
        if unreachable(exc):
            raise StorageError(f"the database server of {directory} could not be reached or closed the connection "
                               f"({type(exc).__name__}); check that it runs, then retry (the failed call wrote "
                               "nothing)") from exc
        if refused(exc):
            raise StorageError(f"the file system refused a write to {directory} ({str(exc)[:160]}); free space or "
                               "make the directory writable, then retry (the failed call wrote nothing)") from exc
        raise CorruptMemoryError(f"{directory / 'memory.duckdb'} could not be read ({type(exc).__name__}: "
                                 f"{str(exc)[:160]}); run memctl doctor {directory}, and if it reports damage restore "
                                 "memory.duckdb from a backup (every other file is derived from it)") from exc
