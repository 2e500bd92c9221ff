"""The durable store on PostgreSQL (``selfmem[postgres]``): one schema per memory, many writers.

The same tables as the DuckDB store (records, raw vectors as pgvector ``vector`` values, sessions,
topics, memberships, graph edges, the mirror's journal, meta), created and migrated by selfmem in one
schema per memory, plus a ``changes`` log: every insert and delete appends one row (in its own
transaction) naming the ids and the writing process, so that other processes catch up with what they
did not write (:meth:`PostgresStore.changes_since`). Idempotency keys are a unique constraint, so they
hold across processes. Metadata filters are evaluated in Python on the rows the other filters keep
(the JSON semantics of ``_where.evaluate``, identical to the DuckDB store's).

The URL's password is never stored: pass it in the URL given to ``Memory(path, store=...)`` or in
``PGPASSWORD``; the config keeps the URL without it.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from .._config import check_schema, check_store_url, redact_url, scrub
from .._errors import ConfigError, CorruptMemoryError, DependencyError, InvalidInputError, ReadOnlyError, SelfmemError, StorageError
from .._types import JSON, NewRecord, TopicRow
from ._duckdb import SCHEMA_VERSION
from ._dialect import POSTGRES, Connection
from ._graph_tables import EDGE_SCHEMA, SqlGraphTables
from ._protocol import Ids
from ._sql import RECORD_COLUMNS, SqlStore, as_ints
from ._where import check_where, evaluate, lookup

__all__ = ["PostgresStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE SEQUENCE IF NOT EXISTS record_ids START 1;
CREATE TABLE IF NOT EXISTS sessions (name TEXT PRIMARY KEY, created_at TIMESTAMP NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    id BIGINT PRIMARY KEY, kind TEXT NOT NULL, text TEXT NOT NULL, metadata TEXT NOT NULL, session TEXT,
    created_at TIMESTAMP NOT NULL, importance DOUBLE PRECISION NOT NULL, use_count INTEGER NOT NULL,
    last_used_at TIMESTAMP, parents BIGINT[] NOT NULL, key TEXT UNIQUE);
CREATE INDEX IF NOT EXISTS records_session ON records (session);
CREATE TABLE IF NOT EXISTS embeddings (
    record_id BIGINT NOT NULL, embedder TEXT NOT NULL, vector vector NOT NULL, PRIMARY KEY (record_id, embedder));
CREATE TABLE IF NOT EXISTS topics (
    id BIGINT PRIMARY KEY, parent BIGINT, level INTEGER NOT NULL, size BIGINT NOT NULL, centroid BYTEA NOT NULL,
    label TEXT NOT NULL, keywords TEXT NOT NULL, provisional BOOLEAN NOT NULL);
CREATE TABLE IF NOT EXISTS memberships (
    record_id BIGINT NOT NULL, topic_id BIGINT NOT NULL, prob DOUBLE PRECISION NOT NULL, rank INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS changes (seq BIGSERIAL PRIMARY KEY, op TEXT NOT NULL, ids BIGINT[] NOT NULL,
    writer TEXT NOT NULL);
"""


def _naive(ts: datetime) -> datetime:
    return ts.astimezone(timezone.utc).replace(tzinfo=None) if ts.tzinfo else ts


def _array(value: object) -> object:
    """A pgvector value as a numpy array (the binary protocol gives ``Vector`` objects)."""
    return value.to_numpy() if hasattr(value, "to_numpy") else value


def _psycopg() -> Any:
    try:
        import psycopg
        from pgvector.psycopg import register_vector
    except ImportError as exc:
        raise DependencyError("a PostgreSQL store needs psycopg and pgvector: pip install 'selfmem[postgres]'") from exc
    return psycopg, register_vector


class PostgresStore(SqlStore):
    """PostgreSQL-backed storage of one memory (implements :class:`selfmem.store.Store`).

    Parameters
    ----------
    url : str
        ``postgresql://user[:password]@host[:port]/database`` (or ``?host=/socket/dir``).
    schema : str
        The memory's schema (created with its tables when missing).
    read_only : bool
        Every transaction of this connection is read-only.
    """

    dialect = POSTGRES

    def __init__(self, url: str, schema: str, *, read_only: bool = False, _con: Connection = None) -> None:
        try:
            check_schema(schema, required=True)
            check_store_url(url)
        except ConfigError as exc:
            raise InvalidInputError(str(exc)) from None
        self.url, self.schema, self.read_only = url, schema, read_only
        self.path = Path(schema)
        self.topics_generation = 0
        self.view_manifest: dict[str, JSON] | None = None
        self.writer = uuid.uuid4().hex  # names this process's rows in the change log
        psycopg, register_vector = _psycopg()
        self._errors = psycopg.Error
        try:
            self._con = _con if _con is not None else psycopg.connect(url, autocommit=True)
        except psycopg.Error as exc:
            raise StorageError(f"cannot connect to PostgreSQL at {redact_url(url)} "
                               f"({scrub(str(exc).strip(), url)[:200]}); check that the server runs and the URL") from exc
        try:
            if read_only:  # no DDL: a reader may be on a hot standby (a read replica), where none can run
                self._con.execute("SET default_transaction_read_only = on")
            else:
                self._refuse_standby()
                with self._con.transaction():  # processes creating memories at once: one runs the DDL at a time
                    self._con.execute("SELECT pg_advisory_xact_lock(hashtext('selfmem:create'))")
                    self._con.execute("CREATE EXTENSION IF NOT EXISTS vector")
                    self._con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            ext = self._con.execute("SELECT extnamespace::regnamespace::text FROM pg_extension "
                                    "WHERE extname = 'vector'").fetchone()
            # the memory's own schema first; the vector type's schema only for the type (never a table: every
            # table a memory reads is its own, checked qualified in _stored_version)
            self._con.execute(f'SET search_path TO "{schema}"' + (f", {ext[0]}" if ext else ""))
            if read_only:
                self._check_readable()
            register_vector(self._con)
            if _con is None and not read_only:
                self._init_schema()
        except SelfmemError:
            self._con.close()
            raise
        except psycopg.Error as exc:
            self._con.close()
            raise CorruptMemoryError(f"cannot open the memory {schema} at {redact_url(url)}: "
                                     f"{scrub(str(exc).strip(), url)[:200]}"
                                     ) from exc
        self._graph = SqlGraphTables(self._con, POSTGRES)
        self._store_id = self.get_meta("store_id") or ""

    def _refuse_standby(self) -> None:
        if self._con.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
            raise ReadOnlyError(f"the PostgreSQL server at {redact_url(self.url)} is a read replica (a standby): open "
                                "the memory with read_only=True there, or write through the primary's URL")

    def _stored_version(self) -> str | None:
        """The schema version the memory was made with (None: not made yet); refuses a newer one."""
        exists = self._con.execute("SELECT to_regclass(%s) IS NOT NULL", [f'"{self.schema}".meta']).fetchone()[0]
        version = self.get_meta("schema_version") if exists else None
        if version is not None and int(version) > SCHEMA_VERSION:
            raise CorruptMemoryError(f"the memory {self.schema} uses store schema {version}, newer than this "
                                     f"selfmem ({SCHEMA_VERSION}); upgrade selfmem to open it")
        return version

    def _check_readable(self) -> None:
        if self._stored_version() is None:
            raise InvalidInputError(f"no memory {self.schema} at {redact_url(self.url)} (a read-only handle creates "
                                    "nothing; on a read replica it may not have arrived yet): check store_schema")

    def _init_schema(self) -> None:
        if self._stored_version() is not None:  # made already: no DDL (it would wait on, and can deadlock with,
            return                               # running writers)
        with self._con.transaction():
            self._con.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [self.schema])  # one creator at a time
            for statement in (_SCHEMA + EDGE_SCHEMA).split(";"):
                if statement.strip():
                    self._con.execute(statement)
            if self._stored_version() is None:  # another creator may have made it while this one waited
                self._con.execute("INSERT INTO meta VALUES ('schema_version', %s), ('store_id', %s)",
                                  [str(SCHEMA_VERSION), uuid.uuid4().hex])

    # -- protocol: handles and transactions -------------------------------------------------
    shared = True  # any number of processes, on any machines, write one memory

    @property
    def graph(self) -> SqlGraphTables:
        return self._graph

    @property
    def store_id(self) -> str:
        return self._store_id

    def reader(self) -> PostgresStore:
        """A second connection (PostgreSQL connections are not shared between threads' transactions)."""
        psycopg, _ = _psycopg()
        return PostgresStore(self.url, self.schema, read_only=True, _con=psycopg.connect(self.url, autocommit=True))

    @contextlib.contextmanager
    def read_transaction(self) -> Iterator[PostgresStore]:
        """One snapshot for the queries inside (inside a transaction already: that one's)."""
        if self._con.info.transaction_status != 0:  # not idle: the enclosing transaction is the snapshot
            yield self
            return
        with self._con.transaction():
            self._con.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield self

    @contextlib.contextmanager
    def transaction(self, what: str) -> Iterator[None]:
        try:
            with self._con.transaction():
                yield
        except self._errors as exc:
            if type(exc).__name__ == "UniqueViolation" and what == "add the records":
                raise StorageError(f"could not {what}: another writer added a record with the same key at the same "
                                   "moment; retry (retries with key= return the stored id)") from exc
            raise StorageError(f"could not {what}: PostgreSQL refused it ({str(exc).strip()[:160]}); nothing was "
                               "written; retry (retries with key= are safe)") from exc

    def close(self) -> None:
        self._con.close()

    def has_table(self, name: str) -> bool:
        row = self._con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = %s AND "
                                "table_name = %s", [self.schema, name]).fetchone()
        return bool(row[0])

    def set_checkpoint_threshold(self, nbytes: int) -> None:
        """The server checkpoints by itself."""

    def wal_bytes(self) -> int:
        return 0

    def checkpoint(self, tries: int = 100) -> bool:
        return True

    # -- meta -------------------------------------------------------------------------------
    # -- writes -----------------------------------------------------------------------------
    def allocate_ids(self, n: int) -> list[int]:
        return [int(r[0]) for r in self._con.execute("SELECT nextval('record_ids') FROM generate_series(1, %s)",
                                                     [n]).fetchall()]

    def reserve_ids(self, upto: int) -> None:
        """Make :meth:`allocate_ids` hand out only ids above ``upto`` (a copy keeps its ids)."""
        self._con.execute("SELECT setval('record_ids', greatest(%s, (SELECT last_value FROM record_ids)))", [upto])

    def insert(self, records: Sequence[NewRecord], vectors: Mapping[str, np.ndarray], ids: Ids | None = None,
               writes: Sequence[Callable[[PostgresStore], None]] = ()) -> list[int]:
        n = len(records)
        if n == 0:
            return []
        ids = self.allocate_ids(n) if ids is None else as_ints(ids)
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        whens = [now if r.created_at is None else _naive(r.created_at) for r in records]
        with self.transaction("add the records"):
            self._serialize_graph()
            for name in sorted({r.session for r in records if r.session is not None}):
                first = min(w for r, w in zip(records, whens) if r.session == name)
                self._con.execute("INSERT INTO sessions VALUES (%s, %s) ON CONFLICT (name) DO NOTHING", [name, first])
            with self._con.cursor() as cur:
                cur.executemany(f"INSERT INTO records ({RECORD_COLUMNS}, key) VALUES (%s, %s, %s, %s, %s, %s, %s, 0, NULL, "
                                "%s, %s)", [(i, r.kind, r.text, r.metadata_json, r.session, w, r.importance,
                                             list(r.parents), r.key) for i, r, w in zip(ids, records, whens)])
                for role, arr in vectors.items():
                    self._insert_vectors(cur, role, ids, arr)
            for write in writes:
                write(self)
            # an edge this add made to a record another writer has just deleted must not outlive it
            keys = [f"memory:{i}" for i in ids]
            # (the id looked up by the primary key: a join on 'memory:' || id read every record at each add)
            self._con.execute("DELETE FROM edges WHERE src = ANY(%s) AND starts_with(dst, 'memory:') AND NOT EXISTS "
                              "(SELECT 1 FROM records r WHERE r.id = CASE WHEN dst ~ '^memory:[0-9]{1,18}$' "
                              "THEN substr(dst, 8)::bigint END)", [keys])
            self._log("add", ids)
        return ids

    def _serialize_graph(self) -> None:
        """Adds and deletes of all processes commit one at a time (a transaction lock, held to its end), so an
        add never links to a record whose delete committed beside it unseen."""
        self._con.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [self.schema + ":graph"])

    def _insert_vectors(self, cur: Connection, role: str, ids: Sequence[int], arr: np.ndarray) -> None:
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        cur.executemany("INSERT INTO embeddings VALUES (%s, %s, %s)", [(i, role, v) for i, v in zip(ids, arr)])

    def _log(self, op: str, ids: Sequence[int]) -> None:
        self._con.execute("INSERT INTO changes (op, ids, writer) VALUES (%s, %s, %s)", [op, as_ints(ids), self.writer])

    def delete(self, ids: Ids, writes: Sequence[Callable[[PostgresStore], None]] = ()) -> None:
        with self.transaction("delete the records"):
            self._serialize_graph()
            for write in writes:
                write(self)
            for table, col in (("embeddings", "record_id"), ("memberships", "record_id"), ("records", "id")):
                self._con.execute(f"DELETE FROM {table} WHERE {col} = ANY(%s)", [as_ints(ids)])
            self._log("delete", as_ints(ids))

    def replace_vectors(self, role: str, ids: Ids, arr: np.ndarray) -> None:
        with self.transaction(f"replace the {role} vectors"), self._con.cursor() as cur:
            cur.execute("DELETE FROM embeddings WHERE embedder = %s AND record_id = ANY(%s)", [role, as_ints(ids)])
            self._insert_vectors(cur, role, as_ints(ids), arr)

    def changes_since(self, seq: int) -> tuple[int, list[int], list[int]]:
        """What other processes added and deleted after change ``seq``: ``(last seq, added, deleted)``."""
        rows = self._con.execute("SELECT seq, op, ids, writer FROM changes WHERE seq > %s ORDER BY seq",
                                 [seq]).fetchall()
        added: list[int] = []
        deleted: list[int] = []
        for s, op, ids, writer in rows:
            seq = int(s)
            if writer != self.writer:
                (added if op == "add" else deleted).extend(int(i) for i in ids)
        gone = set(deleted)
        return seq, [i for i in added if i not in gone], deleted

    def last_change(self) -> int:
        return int(self._con.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0])

    # -- reads ------------------------------------------------------------------------------
    def ids(self) -> np.ndarray:
        return np.asarray([r[0] for r in self._con.execute("SELECT id FROM records ORDER BY id").fetchall()],
                          dtype=np.int64)

    def vectors(self, role: str, ids: Ids | None = None) -> tuple[np.ndarray, np.ndarray]:
        sql = "SELECT record_id, vector FROM embeddings WHERE embedder = %s"
        params: list[object] = [role]
        if ids is not None:
            sql += " AND record_id = ANY(%s)"
            params.append(as_ints(ids))
        rows = self._con.execute(sql + " ORDER BY record_id", params).fetchall()
        if not rows:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        return (np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows)),
                np.vstack([np.asarray(_array(r[1]), dtype=np.float32) for r in rows]))

    def filter_ids(self, kinds: Sequence[str] | None = None, sessions: Sequence[str] | None = None,
                   where: Mapping[str, object] | None = None, since: datetime | None = None,
                   until: datetime | None = None) -> np.ndarray:
        clauses: list[str] = []
        params: list[object] = []
        for column, values in (("kind", kinds), ("session", sessions)):
            if values is not None:
                clauses.append(f"{column} = ANY(%s)")
                params.append(list(values))
        if since is not None:
            clauses.append("created_at >= %s")
            params.append(_naive(since))
        if until is not None:
            clauses.append("created_at < %s")
            params.append(_naive(until))
        preds = check_where(where)
        sql = "SELECT id" + (", metadata" if preds else "") + " FROM records"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        rows = self._con.execute(sql + " ORDER BY id", params).fetchall()
        if preds:  # JSON semantics in Python, as _where.evaluate defines them for every store
            rows = [r for r in rows if all(evaluate(lookup(json.loads(r[1]), p.keys), p) for p in preds)]
        return np.asarray([r[0] for r in rows], dtype=np.int64)

    # -- topics -----------------------------------------------------------------------------
    def add_memberships(self, ids: Ids, tids: Ids, probs: Sequence[float] | np.ndarray, rank: int = 0) -> None:
        with self._con.cursor() as cur:
            cur.executemany("INSERT INTO memberships VALUES (%s, %s, %s, %s)",
                            [(int(i), int(t), float(p), rank) for i, t, p in zip(ids, tids, probs)])

    def add_topics(self, rows: Sequence[TopicRow]) -> None:
        with self._con.cursor() as cur:
            cur.executemany("INSERT INTO topics VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                            [(t.id, t.parent, t.level, t.size, np.asarray(t.centroid, np.float32).tobytes(), t.label,
                              json.dumps(list(t.keywords)), t.provisional) for t in rows])

    def replace_topics(self, topics: Sequence[TopicRow], ids: np.ndarray, tids: np.ndarray,
                       probs: np.ndarray) -> None:
        with self.transaction("swap in the new topics"):
            # one swap at a time over all processes: a later one waits, then replaces the earlier one whole
            self._con.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [self.schema + ":topics"])
            self._con.execute("DELETE FROM topics")
            self._con.execute("DELETE FROM memberships")
            self.add_topics(topics)
            for r in range(tids.shape[1] if tids.ndim == 2 else 0):
                self.add_memberships(ids, tids[:, r], probs[:, r], r)
        self.topics_generation += 1

    def top_topic_table(self) -> tuple[np.ndarray, np.ndarray]:
        rows = self._con.execute("SELECT record_id, topic_id FROM memberships WHERE rank = 0 ORDER BY 1").fetchall()
        return (np.array([r[0] for r in rows], dtype=np.int64), np.array([r[1] for r in rows], dtype=np.int64))

    def topic_members(self, topic_ids: Ids) -> np.ndarray:
        rows = self._con.execute("SELECT record_id FROM memberships WHERE rank = 0 AND topic_id = ANY(%s) ORDER BY 1",
                                 [as_ints(topic_ids)]).fetchall()
        return np.asarray([r[0] for r in rows], dtype=np.int64)

    # -- summaries --------------------------------------------------------------------------
    def scan(self) -> dict[str, int]:
        n = int(self._con.execute("SELECT count(*) FROM records").fetchone()[0])
        per_role = dict(self._con.execute("SELECT embedder, count(*) FROM embeddings GROUP BY 1").fetchall())
        return {"records": n, **{f"vectors.{k}": int(v) for k, v in per_role.items()}}

