"""The Memory facade, the durable DuckDB store and the derived parts it keeps up to date."""

from ._memory import Memory

__all__ = ["Memory"]
