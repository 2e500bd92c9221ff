"""The Neo4j backend: the same graph written to a Neo4j server through the official driver.

Install with ``pip install 'selfmem[neo4j]'``; the driver is imported on first use. Credentials come
from the arguments, else ``SELFMEM_NEO4J_URI`` / ``SELFMEM_NEO4J_USER`` / ``SELFMEM_NEO4J_PASSWORD``;
the password is never logged, shown in a repr or written to ``config.toml``. Every statement is in
``_cypher``; this module only batches rows and runs them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .._errors import DependencyError, GraphError, InvalidInputError
from . import _cypher as cy

if TYPE_CHECKING:
    from .._config import GraphConfig

__all__ = ["Neo4jBackend", "credentials"]


def credentials(uri: str | None = None, user: str | None = None, password: str | None = None,
                database: str | None = None, *, defaults: GraphConfig | None = None) -> tuple[str, str, str | None, str]:
    """(uri, user, password, database): arguments first, then the environment, then ``defaults`` (a GraphConfig)."""
    env = os.environ
    uri = uri or env.get("SELFMEM_NEO4J_URI") or (defaults.neo4j_uri if defaults else "bolt://127.0.0.1:7687")
    user = user or env.get("SELFMEM_NEO4J_USER") or (defaults.neo4j_user if defaults else "neo4j")
    password = password or env.get("SELFMEM_NEO4J_PASSWORD") or (defaults.neo4j_password if defaults else None)
    database = database or env.get("SELFMEM_NEO4J_DATABASE") or (defaults.neo4j_database if defaults else "neo4j")
    for name, value in (("uri", uri), ("user", user), ("database", database)):
        if not isinstance(value, str) or not value.strip():
            raise InvalidInputError(f"Neo4j {name} must be a non-empty string")
    if "://" not in uri:
        raise InvalidInputError(f"Neo4j uri {uri!r} must look like bolt://127.0.0.1:7687 or neo4j://host:7687")
    return uri, user, password, database


def _driver_module() -> ModuleType:
    try:
        import neo4j
    except ImportError as exc:
        raise DependencyError("the Neo4j backend needs the neo4j driver: pip install 'selfmem[neo4j]'") from exc
    return neo4j


class Neo4jBackend:
    """Writes nodes and edges to one Neo4j database (a ``GraphStore`` sink).

    Parameters
    ----------
    uri, user, password, database : str
        See :func:`credentials`.
    batch : int
        Rows per ``UNWIND`` statement.
    """

    def __init__(self, uri: str, user: str, password: str | None, database: str = "neo4j", *,
                 batch: int = 1000) -> None:
        self.uri, self.user, self.database, self.batch = uri, user, database, batch
        self._password = password
        self._driver: Any = None

    def __repr__(self) -> str:
        return f"Neo4jBackend({self.uri!r}, user={self.user!r}, database={self.database!r})"

    # -- connection -----------------------------------------------------------------
    def _run(self, statement: str, **params: object) -> None:
        neo4j = _driver_module()
        try:
            if self._driver is None:
                auth = (self.user, self._password) if self._password is not None else None
                driver = neo4j.GraphDatabase.driver(self.uri, auth=auth, connection_timeout=5.0,
                                                    max_transaction_retry_time=5.0)
                driver.verify_connectivity()  # fails fast when the server is down (no retry loop)
                self._driver = driver
            self._driver.execute_query(statement, params, database_=self.database)
        except neo4j.exceptions.AuthError as exc:
            raise GraphError(f"Neo4j at {self.uri} refused user {self.user!r}: check SELFMEM_NEO4J_USER and "
                             "SELFMEM_NEO4J_PASSWORD") from exc
        except (neo4j.exceptions.ServiceUnavailable, neo4j.exceptions.SessionExpired, OSError) as exc:
            self.close()
            raise GraphError(f"Neo4j at {self.uri} is unreachable ({type(exc).__name__}); start it or check "
                             "SELFMEM_NEO4J_URI") from exc
        except neo4j.exceptions.Neo4jError as exc:
            raise GraphError(f"Neo4j rejected a statement ({exc.code}: {exc.message})") from exc

    def close(self) -> None:
        if self._driver is not None:
            driver, self._driver = self._driver, None
            driver.close()

    def _batched(self, statement: str, rows: Sequence[Mapping[str, object]]) -> None:
        for lo in range(0, len(rows), self.batch):
            self._run(statement, rows=list(rows[lo:lo + self.batch]))

    # -- writes -----------------------------------------------------------------------
    def ensure_schema(self) -> None:
        """Create the uniqueness constraints (idempotent)."""
        for statement in cy.CONSTRAINTS:
            self._run(statement)

    def upsert_nodes(self, label: str, rows: Sequence[Mapping[str, object]]) -> None:
        if rows:
            self._batched(cy.UPSERT[label], rows)

    def upsert_edges(self, rows: Iterable[tuple[str, str, str, float, datetime | None, str]]) -> None:
        """Merge edges given as (src key, rel, dst key, weight, created_at, props JSON); ends must exist."""
        by_rel: dict[str, list[dict[str, object]]] = {}
        for src, rel, dst, weight, created, props in rows:
            by_rel.setdefault(rel, []).append({
                "src": _value(src, cy.ENDS[rel][1]), "dst": _value(dst, cy.ENDS[rel][3]), "weight": float(weight),
                "created_at": None if created is None else _aware(created),
                "props": json.loads(props) if props not in ("", "{}") else {}})
        for rel, batch in by_rel.items():
            self._batched(cy.EDGE[rel], batch)

    def delete_memories(self, ids: Sequence[int]) -> None:
        for lo in range(0, len(ids), self.batch):
            self._run(cy.DELETE_MEMORIES, ids=[int(i) for i in ids[lo:lo + self.batch]])

    def replace_topic_edges(self, topic_ids: Sequence[int]) -> None:
        """Drop the old tree's edges and the topics no longer in it (the new tree is written next)."""
        self._run(cy.DELETE_TOPIC_EDGES)
        self._run(cy.DELETE_STALE_TOPICS, ids=[int(i) for i in topic_ids])


def _value(node_key: str, prop: str) -> int | str:
    kind, _, value = node_key.partition(":")
    return int(value) if kind in ("memory", "topic") else value


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=timezone.utc)
