"""The differences between the SQL of DuckDB and of PostgreSQL, in one small object.

Statements shared by both stores are written once with ``?`` placeholders and DuckDB's spelling, and a
:class:`Dialect` turns them into the engine's: placeholders (``?`` or ``%s``), a list parameter
(``IN (?, ...)``/``IN (SELECT unnest(?::T[]))`` or ``= ANY(%s)``), column arrays for a bulk insert, and the
few expressions the engines spell differently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

import numpy as np

__all__ = ["Dialect", "DUCKDB", "POSTGRES", "ArrayType", "Connection", "DBRow", "fetch_arrays"]

ArrayType = Literal["text", "float", "time", "int"]

Connection: TypeAlias = Any
"""A driver's connection or cursor (duckdb's, psycopg's), used through ``execute`` and ``fetch*``: the
drivers' objects are untyped here (the stores import them lazily and call them dynamically)."""

DBRow: TypeAlias = tuple[Any, ...]
"""One row as the driver returns it: the values of the selected columns."""


@dataclass(frozen=True)
class Dialect:
    """How one engine spells what the shared statements need.

    Attributes
    ----------
    name : str
    placeholder : str
        The driver's parameter marker (``?`` for DuckDB, ``%s`` for psycopg).
    types : dict
        The engine's name of each :data:`ArrayType` (the element type of an array parameter).
    short_list : int
        Lists up to this long are written as one placeholder per value (DuckDB answers ``IN (?, ?)`` from
        its index: 4.3 -> 2.8 ms for 97 records of 200k); longer ones as one array parameter. 0: always an array.
    array_any : bool
        An array parameter is matched by ``= ANY(?)`` (PostgreSQL) rather than ``IN (SELECT unnest(?))``.
    memory_missing : str
        A condition on ``{end}`` (an edge's ``src`` or ``dst``): it names a memory that is not in ``records``.
    epoch : str
        Seconds since 1970 of the naive UTC timestamp ``{col}``, as a double.
    """

    name: str
    placeholder: str
    types: dict[str, str] = field(default_factory=dict)
    short_list: int = 0
    array_any: bool = False
    memory_missing: str = ""
    epoch: str = "epoch({col})"

    def sql(self, statement: str) -> str:
        """``statement`` (written with ``?`` placeholders and no literal ``?``) in the engine's placeholders."""
        return statement if self.placeholder == "?" else statement.replace("?", self.placeholder)

    def in_list(self, column: str, values: Sequence[object], kind: ArrayType = "int") -> tuple[str, list[object]]:
        """``column`` is one of ``values``: the condition (``?`` placeholders) and its parameters."""
        values = list(values)
        if 0 < len(values) <= self.short_list:
            return f"{column} IN ({', '.join('?' * len(values))})", values
        if self.array_any:
            return f"{column} = ANY(?)", [values]
        return f"{column} IN (SELECT unnest(?::{self.types[kind]}[]))", [values]

    def unnest(self, kinds: Sequence[ArrayType | None]) -> str:
        """A select list zipping one array parameter per column (``None``: one scalar parameter for all rows)."""
        return ", ".join("?" if k is None else f"unnest(?::{self.types[k]}[])" for k in kinds)


DUCKDB = Dialect("duckdb", "?", {"text": "VARCHAR", "float": "DOUBLE", "time": "TIMESTAMP", "int": "BIGINT"},
                 short_list=1024,
                 memory_missing="starts_with({end}, 'memory:') AND TRY_CAST(substr({end}, 8) AS BIGINT) "
                                "NOT IN (SELECT id FROM records)")
POSTGRES = Dialect("postgres", "%s", {"text": "text", "float": "float8", "time": "timestamp", "int": "bigint"},
                   short_list=0, array_any=True,
                   memory_missing="starts_with({end}, 'memory:') AND NOT EXISTS (SELECT 1 FROM records r "
                                  "WHERE 'memory:' || r.id = {end})",
                   epoch="EXTRACT(EPOCH FROM {col})::float8")


def fetch_arrays(cur: Connection) -> list[np.ndarray]:
    """The columns of an executed query's rows as arrays: columnar where the engine fetches so (DuckDB's
    ``fetchnumpy``: 17 against 240 ms for 300k rows), else built from the rows."""
    if hasattr(cur, "fetchnumpy"):
        return list(cur.fetchnumpy().values())
    rows = cur.fetchall()
    return [np.array([r[j] for r in rows]) for j in range(len(cur.description))]
