"""The durable store on DuckDB: one file per memory directory (the embedded default).

It holds records, raw per-embedder vectors (float32 blobs), sessions and a meta
table (schema version, embedder fingerprints). Everything else in the memory
directory is derived from it and can be rebuilt.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from .._errors import CorruptMemoryError, InvalidInputError, MemoryLockedError, StorageError
from .._types import JSON, NewRecord, TopicRow
from ._dialect import DUCKDB, Connection
from ._graph_tables import EDGE_SCHEMA, SqlGraphTables
from ._protocol import Ids
from ._sql import PAGE_COLUMNS, RECORD_COLUMNS, SqlStore, as_ints
from ._where import Pred, check_where, evaluate, lookup, to_sql

__all__ = ["DuckDBStore", "NewRecord", "TopicRow", "SCHEMA_VERSION", "PAGE_COLUMNS", "DATABASE_ERRORS", "snapshot", "refused"]

DATABASE_ERRORS: tuple[type[Exception], ...] = (duckdb.Error,)
"""The database's own exceptions (for the few callers that must tell them apart, e.g. a closed store)."""

INDEX_PROBES = 512
"""Values looked up through each index by :meth:`DuckDBStore.scan` (all of them up to this many)."""

_REFUSALS = ("read-only file system", "no space left", "disk quota exceeded", "permission denied", "file too large",
             "too many open files", "not enough space")


def refused(exc: BaseException) -> bool:
    """True when a database or OS error says the file system refused (read-only, full, no permission), which
    is a :class:`StorageError`, not damage."""
    if isinstance(exc, OSError) and not isinstance(exc, duckdb.Error):
        return True
    return any(r in str(exc).lower() for r in _REFUSALS)


def _refusal(path: Path, exc: BaseException) -> StorageError:
    return StorageError(f"the file system refused {path} ({str(exc)[:200]}); free space or make the directory "
                        "writable, then retry (nothing was changed)")

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);
CREATE SEQUENCE IF NOT EXISTS record_ids START 1;
CREATE TABLE IF NOT EXISTS sessions (name VARCHAR PRIMARY KEY, created_at TIMESTAMP NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    id BIGINT PRIMARY KEY,
    kind VARCHAR NOT NULL,
    text VARCHAR NOT NULL,
    metadata VARCHAR NOT NULL,
    session VARCHAR,
    created_at TIMESTAMP NOT NULL,
    importance DOUBLE NOT NULL,
    use_count INTEGER NOT NULL,
    last_used_at TIMESTAMP,
    parents BIGINT[] NOT NULL,
    key VARCHAR
);
CREATE TABLE IF NOT EXISTS embeddings (
    record_id BIGINT NOT NULL,
    embedder VARCHAR NOT NULL,
    vector BLOB NOT NULL
);
"""

_TOPIC_SCHEMA = """
CREATE TABLE IF NOT EXISTS topics (
    id BIGINT PRIMARY KEY,
    parent BIGINT,
    level INTEGER NOT NULL,
    size BIGINT NOT NULL,
    centroid BLOB NOT NULL,
    label VARCHAR NOT NULL,
    keywords VARCHAR NOT NULL,
    provisional BOOLEAN NOT NULL
);
CREATE TABLE IF NOT EXISTS memberships (
    record_id BIGINT NOT NULL,
    topic_id BIGINT NOT NULL,
    prob DOUBLE NOT NULL,
    rank INTEGER NOT NULL
);
"""

_KEY_INDEX = "CREATE INDEX IF NOT EXISTS records_key ON records (key)"  # unique by the writer's check


class DuckDBStore(SqlStore):
    """DuckDB-backed storage of one memory (implements :class:`selfmem.store.Store`).

    Parameters
    ----------
    path : path-like
        The ``.duckdb`` file; created if missing.
    """

    dialect = DUCKDB

    def __init__(self, path: str | Path, *, read_only: bool = False, _con: Connection = None) -> None:
        self.path = Path(path)
        self.topics_generation = 0
        self.view_manifest: dict[str, JSON] | None = None  # a read view's manifest, when this store is one (see _readview)
        self._store_id: str | None = None
        """Counts topic trees swapped in through this connection (parts that derive from topics watch it)."""
        if _con is not None:  # a reader sharing an open database (see reader())
            self._con = _con
            self._graph = SqlGraphTables(_con, DUCKDB)
            return
        existed = self.path.exists()
        try:
            self._con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as exc:
            msg = str(exc)
            if "lock" in msg.lower():
                pid = re.search(r"PID (\d+)", msg)
                holder = f" (held by PID {pid.group(1)})" if pid else ""
                raise MemoryLockedError(
                    f"{self.path.parent} is open for writing in another process{holder}; "
                    "close that Memory first or wait for it to finish"
                ) from exc
            if refused(exc):
                raise _refusal(self.path, exc) from exc
            raise CorruptMemoryError(f"cannot open {self.path}: {msg}") from exc
        except duckdb.Error as exc:
            if refused(exc):
                raise _refusal(self.path, exc) from exc
            raise CorruptMemoryError(
                f"{self.path} cannot be opened as a store ({str(exc)[:200]}): if it is a selfmem memory it is damaged "
                "(restore memory.duckdb from a backup); if not, open another directory"
            ) from exc
        self._graph = SqlGraphTables(self._con, DUCKDB)
        try:
            self._init_schema(existed)
            self._store_id = self.get_meta("store_id") or ""
        except duckdb.Error as exc:
            with contextlib.suppress(duckdb.Error):
                self._con.close()
            if refused(exc):
                raise _refusal(self.path, exc) from exc
            raise CorruptMemoryError(
                f"{self.path} is damaged ({type(exc).__name__}: {str(exc)[:200]}); restore memory.duckdb from a "
                "backup (the other files are derived from it and cannot rebuild it)") from exc
        except BaseException:
            self._con.close()
            raise

    def _init_schema(self, existed: bool) -> None:
        tables = {r[0] for r in self._con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if existed and tables and "meta" not in tables:
            raise CorruptMemoryError(
                f"{self.path} is a DuckDB file of something else (tables {sorted(tables)}); "
                "open a different directory"
            )
        if "meta" in tables:
            writable = self._con.execute("SELECT current_setting('access_mode')").fetchone()[0] != "read_only"
            if "topics" not in tables and writable:
                self._con.execute(_TOPIC_SCHEMA)
            if writable:
                self._con.execute("ALTER TABLE records ADD COLUMN IF NOT EXISTS key VARCHAR")  # older stores
                self._con.execute(_KEY_INDEX)
                self._con.execute(EDGE_SCHEMA)  # every statement IF NOT EXISTS
                if self.get_meta("store_id") is None:  # made by an older selfmem
                    self.set_meta("store_id", uuid.uuid4().hex)
            version = self.get_meta("schema_version")
            if version is None or not version.isdigit():
                raise CorruptMemoryError(f"{self.path} has no schema version; it is not a selfmem store")
            if int(version) > SCHEMA_VERSION:
                raise CorruptMemoryError(
                    f"{self.path} uses store schema {version}, newer than this selfmem ({SCHEMA_VERSION}); "
                    "upgrade selfmem to open it"
                )
            return
        self._con.begin()
        self._con.execute(_SCHEMA)
        self._con.execute(_TOPIC_SCHEMA)
        self._con.execute(EDGE_SCHEMA)
        self._con.execute(_KEY_INDEX)
        self._con.execute("INSERT INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
        self._con.execute("INSERT INTO meta VALUES ('store_id', ?)", [uuid.uuid4().hex])
        self._con.commit()

    shared = False  # one writing process per file: nothing to catch up with

    def changes_since(self, seq: int) -> tuple[int, list[int], list[int]]:
        """Nothing: no other process writes this store."""
        return seq, [], []

    def last_change(self) -> int:
        return 0

    @property
    def graph(self) -> SqlGraphTables:
        """The knowledge graph's tables on this connection (see ``_graph_tables``)."""
        return self._graph

    @property
    def store_id(self) -> str:
        """A random id given to this store when it was made: derived files name it, so that a file copied
        from another memory is not used ('' for an older store opened read-only). Read once, at open:
        background refits ask for it without touching the writer's connection."""
        if self._store_id is None:
            self._store_id = self.get_meta("store_id") or ""
        return self._store_id

    def has_table(self, name: str) -> bool:
        return bool(self._con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                                      [name]).fetchone()[0])

    def reader(self) -> DuckDBStore:
        """A second connection to the same database, for another thread (close it after use).

        DuckDB gives each connection its own transactions, so a reader that runs its queries
        inside ``with reader.read_transaction():`` sees one consistent state while this store writes.
        """
        return DuckDBStore(self.path, _con=self._con.cursor())

    @contextlib.contextmanager
    def read_transaction(self) -> Iterator[DuckDBStore]:
        """Context manager: the queries inside see one consistent state (a read transaction)."""
        self._con.begin()
        try:
            yield self
        finally:
            self._con.rollback()

    def set_checkpoint_threshold(self, nbytes: int) -> None:
        """WAL size at which DuckDB checkpoints inside a commit (see ``_part_checkpoint``)."""
        self._con.execute(f"SET checkpoint_threshold = '{int(nbytes)}B'")

    def wal_bytes(self) -> int:
        """Size of the write-ahead log file (0 when there is none)."""
        wal = self.path.with_name(self.path.name + ".wal")
        return wal.stat().st_size if wal.exists() else 0

    def checkpoint(self, tries: int = 100) -> bool:
        """Fold the WAL into the database file (``CHECKPOINT``); False if writes never paused long enough.

        A checkpoint cannot start while another connection's write transaction is open, so it is
        retried (``tries`` times, 10 ms apart) until it finds a gap between the writer's commits.
        """
        for _ in range(tries):
            try:
                self._con.execute("CHECKPOINT")
                return True
            except duckdb.TransactionException:
                time.sleep(0.01)
        return False

    # -- meta -----------------------------------------------------------------
    # -- writes ---------------------------------------------------------------
    def allocate_ids(self, n: int) -> list[int]:
        """n new record ids (from a sequence: an id is never handed out twice, gaps are possible)."""
        return [int(r[0]) for r in self._con.execute("SELECT nextval('record_ids') FROM range(?)", [n]).fetchall()]

    def reserve_ids(self, upto: int) -> None:
        """Make :meth:`allocate_ids` hand out only ids above ``upto`` (a copy keeps its ids)."""
        current = int(self._con.execute("SELECT nextval('record_ids')").fetchone()[0])
        if current < upto:  # DuckDB cannot restart a sequence in place: step it past upto
            self._con.execute("SELECT max(nextval('record_ids')) FROM range(?)", [upto - current])

    @contextlib.contextmanager
    def transaction(self, what: str) -> Iterator[None]:
        """One write transaction around the block (``what`` names it in a StorageError)."""
        with self._writing(what):
            yield

    @contextlib.contextmanager
    def _writing(self, what: str) -> Iterator[Connection]:
        """One write transaction: committed when the block ends, rolled back (and reported) when it fails.

        A failed commit (e.g. a full disk) may already have ended the transaction, so a failing rollback
        is not allowed to hide the real error; a write the file system refused is a StorageError.
        """
        con = self._con
        con.begin()
        try:
            yield con
            con.commit()
        except BaseException as exc:
            with contextlib.suppress(duckdb.Error):
                con.rollback()
            if isinstance(exc, (duckdb.IOException, OSError)) or (isinstance(exc, duckdb.Error) and refused(exc)):
                raise StorageError(f"could not {what}: the file system refused the write ({str(exc)[:160]}); "
                                   "nothing was written. Free space (or make the directory writable) and retry; "
                                   "retries with key= are safe") from exc
            raise

    def insert(self, records: Sequence[NewRecord], vectors: Mapping[str, np.ndarray], ids: Ids | None = None,
               writes: Sequence[Callable[[DuckDBStore], None]] = ()) -> list[int]:
        """Insert records and their raw vectors in one transaction.

        Parameters
        ----------
        records : sequence of NewRecord, length n
        vectors : mapping of embedder role to float32 array, shape (n, dim)
        ids : sequence of int, length n, optional
            Ids from :meth:`allocate_ids` (allocated here when omitted).
        writes : sequence of callables
            Further writes of derived parts (e.g. topic memberships), each called with this store
            inside the same transaction: all of them commit with the records or none does.

        Returns
        -------
        list of int
            The new ids, in order.
        """
        n = len(records)
        if n == 0:
            return []
        for role, arr in vectors.items():
            if arr.shape[0] != n:
                raise InvalidInputError(f"{role} vectors: expected {n} rows, got {arr.shape[0]}")
        ids = self.allocate_ids(n) if ids is None else as_ints(ids)
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        with self._writing("add the records") as con:
            whens = [now if r.created_at is None else r.created_at.replace(tzinfo=None) for r in records]
            sessions = sorted({r.session for r in records if r.session is not None})
            for name in sessions:
                first = min(w for r, w in zip(records, whens) if r.session == name)
                con.execute("INSERT OR IGNORE INTO sessions VALUES (?, ?)", [name, first])
            import pyarrow as pa  # here, not at import: pyarrow takes a while to load

            # the rows travel as one Arrow table that DuckDB scans (list parameters convert value by value:
            # 6x slower on 60k rows of vectors)
            new = pa.table({
                "id": pa.array(ids, pa.int64()), "kind": pa.array([r.kind for r in records], pa.string()),
                "text": pa.array([r.text for r in records], pa.string()),
                "metadata": pa.array([r.metadata_json for r in records], pa.string()),
                "session": pa.array([r.session for r in records], pa.string()),
                "created_at": pa.array(whens, pa.timestamp("us")),
                "importance": pa.array([float(r.importance) for r in records], pa.float64()),
                "parents": pa.array([list(r.parents) for r in records], pa.list_(pa.int64())),
                "key": pa.array([r.key for r in records], pa.string())})
            self._scan_insert(f"INSERT INTO records ({RECORD_COLUMNS}, key) SELECT id, kind, text, metadata, session, "
                              "created_at, importance, 0, NULL, parents, key FROM {new}", new)
            for role, arr in vectors.items():
                self._insert_vectors(role, ids, arr)
            for write in writes:
                write(self)
        return ids

    def delete(self, ids: Ids, writes: Sequence[Callable[[DuckDBStore], None]] = ()) -> None:
        """Delete records and their vectors in one transaction (with ``writes`` of derived parts, as in insert)."""
        with self._writing("delete the records") as con:
            for write in writes:
                write(self)
            con.execute("DELETE FROM embeddings WHERE record_id IN (SELECT unnest(?::BIGINT[]))", [as_ints(ids)])
            con.execute("DELETE FROM memberships WHERE record_id IN (SELECT unnest(?::BIGINT[]))", [as_ints(ids)])
            con.execute("DELETE FROM records WHERE id IN (SELECT unnest(?::BIGINT[]))", [as_ints(ids)])

    def replace_vectors(self, role: str, ids: Ids, arr: np.ndarray) -> None:
        """Replace (or add) the ``role`` vectors of existing records, in one transaction."""
        with self._writing(f"replace the {role} vectors") as con:
            con.execute("DELETE FROM embeddings WHERE embedder = ? AND record_id IN (SELECT unnest(?::BIGINT[]))",
                        [role, as_ints(ids)])
            self._insert_vectors(role, ids, arr)

    def _insert_vectors(self, role: str, ids: Ids, arr: np.ndarray) -> None:
        import pyarrow as pa

        arr = np.ascontiguousarray(arr, dtype=np.float32)
        n = len(arr)
        if n == 0:
            return
        # each row's bytes as one BLOB, without a Python object per row: an Arrow binary array over the
        # matrix's own buffer (offsets every row's width)
        width = arr.shape[1] * 4
        blobs = pa.Array.from_buffers(pa.large_binary(), n, [None, pa.py_buffer(np.arange(n + 1, dtype=np.int64) * width),
                                                              pa.py_buffer(arr.reshape(-1))])
        new = pa.table({"record_id": pa.array(np.asarray(as_ints(ids), dtype=np.int64)), "vector": blobs})
        self._scan_insert("INSERT INTO embeddings SELECT record_id, $1, vector FROM {new}", new, [role])

    def _scan_insert(self, sql: str, table: Any, params: list[object] | None = None) -> None:
        """Run ``sql`` with ``{new}`` naming ``table`` (an Arrow table) registered on this connection."""
        name = f"_selfmem_new_{uuid.uuid4().hex}"
        self._con.register(name, table)
        try:
            self._con.execute(sql.format(new=name), params or [])
        finally:
            self._con.unregister(name)

    # -- reads ----------------------------------------------------------------
    def ids(self) -> np.ndarray:
        """All record ids, ascending, shape (n,) int64."""
        rows = self._con.execute("SELECT id FROM records ORDER BY id").fetchnumpy()
        return np.asarray(rows["id"], dtype=np.int64)

    def vectors(self, role: str, ids: Ids | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Stored raw vectors of one embedder.

        Returns
        -------
        ids : ndarray, shape (n,) int64
        vectors : ndarray, shape (n, dim) float32 (dim 0 when n == 0)
        """
        sql = "SELECT record_id, vector FROM embeddings WHERE embedder = ?"
        params: list[object] = [role]
        if ids is not None:
            sql += " AND record_id IN (SELECT unnest(?::BIGINT[]))"
            params.append(as_ints(ids))
        res = self._con.execute(sql + " ORDER BY record_id", params)
        with warnings.catch_warnings():  # duckdb 2 notes that a DB-API result copies once into Arrow: still far
            warnings.simplefilter("ignore", UserWarning)  # cheaper than a Python tuple per row
            table = (res.to_arrow_table if hasattr(res, "to_arrow_table") else res.fetch_arrow_table)()
        if table.num_rows == 0:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        return np.asarray(table.column("record_id").to_numpy(), dtype=np.int64), _blob_matrix(table.column("vector"))

    def filter_ids(
        self,
        kinds: Sequence[str] | None = None,
        sessions: Sequence[str] | None = None,
        where: Mapping[str, object] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> np.ndarray:
        """Ids of records matching all given filters, shape (m,) int64.

        ``where`` maps metadata keys (dotted for nesting) to a required value, or to a
        dict of operators: ``$eq $ne $gt $gte $lt $lte $in $nin $exists``.
        ``since`` / ``until`` bound ``created_at`` (inclusive / exclusive).
        """
        clauses: list[str] = []
        params: list[object] = []
        if kinds is not None:
            clauses.append("list_contains(?, kind)")
            params.append(list(kinds))
        if sessions is not None:
            clauses.append("list_contains(?, session)")
            params.append(list(sessions))
        if since is not None:
            clauses.append("created_at >= ?")
            params.append(since.astimezone(timezone.utc).replace(tzinfo=None))
        if until is not None:
            clauses.append("created_at < ?")
            params.append(until.astimezone(timezone.utc).replace(tzinfo=None))
        post: list[Pred] = []
        for pred in check_where(where):
            sql, args, exact = to_sql(pred)
            clauses.append(sql)
            params += args
            if not exact:
                post.append(pred)
        where_sql = " WHERE " + " AND ".join(clauses) if clauses else ""
        if post:  # arrays and objects compare by value: the SQL kept the candidates, Python decides
            rows = self._con.execute(f"SELECT id, metadata FROM records{where_sql} ORDER BY id", params).fetchall()
            keep = []
            for rid, meta in rows:
                data = json.loads(meta)
                if all(evaluate(lookup(data, p.keys), p) for p in post):
                    keep.append(rid)
            return np.asarray(keep, dtype=np.int64)
        rows = self._con.execute(f"SELECT id FROM records{where_sql}", params).fetchnumpy()
        return np.asarray(rows["id"], dtype=np.int64)

    # -- topics ---------------------------------------------------------------
    def add_memberships(self, ids: Ids, tids: Ids, probs: Sequence[float] | np.ndarray, rank: int = 0) -> None:
        """Insert one membership row per id (no transaction of its own: call inside :meth:`insert`'s)."""
        import pyarrow as pa

        new = pa.table({"record_id": pa.array(np.asarray(as_ints(ids), dtype=np.int64)),
                        "topic_id": pa.array(np.asarray(as_ints(tids), dtype=np.int64)),
                        "prob": pa.array(np.asarray(probs, dtype=np.float64))})
        self._scan_insert("INSERT INTO memberships SELECT record_id, topic_id, prob, $1 FROM {new}", new, [int(rank)])

    def add_topics(self, rows: Sequence[TopicRow]) -> None:
        """Insert topic rows (no transaction of its own: call inside :meth:`insert`'s)."""
        for t in rows:
            self._insert_topic(t)

    def _insert_topic(self, t: TopicRow) -> None:
        self._con.execute("INSERT INTO topics VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                          [t.id, t.parent, t.level, t.size, np.asarray(t.centroid, np.float32).tobytes(), t.label,
                           json.dumps(list(t.keywords)), t.provisional])

    def replace_topics(self, topics: Sequence[TopicRow], ids: np.ndarray, tids: np.ndarray,
                       probs: np.ndarray) -> None:
        """Swap in a new topic tree and every record's top memberships, in one transaction.

        ``ids`` (n,), ``tids`` and ``probs`` (n, top): membership rank r of record ids[i] is column r.
        """
        with self._writing("swap in the new topics") as con:
            con.execute("DELETE FROM topics")
            con.execute("DELETE FROM memberships")
            for t in topics:
                self._insert_topic(t)
            top = tids.shape[1] if tids.ndim == 2 else 0
            for r in range(top):
                self.add_memberships(ids, tids[:, r], probs[:, r], r)
        self.topics_generation += 1

    def top_topic_table(self) -> tuple[np.ndarray, np.ndarray]:
        """Every record's most probable topic: record ids ascending (n,) and their topics (n,), int64."""
        got = self._con.execute("SELECT record_id, topic_id FROM memberships WHERE rank = 0 ORDER BY record_id"
                                ).fetchnumpy()
        return (np.asarray(got["record_id"], dtype=np.int64), np.asarray(got["topic_id"], dtype=np.int64))

    def topic_members(self, topic_ids: Ids) -> np.ndarray:
        """Ids of records whose most probable topic is one of ``topic_ids``, ascending."""
        rows = self._con.execute(
            "SELECT record_id FROM memberships WHERE rank = 0 AND topic_id IN (SELECT unnest(?::BIGINT[])) "
            "ORDER BY record_id", [as_ints(topic_ids)]).fetchnumpy()
        return np.asarray(rows["record_id"], dtype=np.int64)

    # -- summaries (stats, inspect, export, doctor) -------------------------------------
    def scan(self) -> dict[str, int]:
        """Read every row of every table once (DuckDB verifies block checksums as it reads) and look a value up
        through each index: records and vectors per embedder. The one health check of the store's blocks
        (``memctl doctor`` runs it; the calls that hit damage report the same CorruptMemoryError).

        Raises CorruptMemoryError when a block is damaged. Index blocks are reached by looking values up one by
        one: every value of an index up to :data:`INDEX_PROBES`, else that many spread over its key order.
        """
        con = self._con
        try:
            tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                                 "WHERE table_schema = 'main'").fetchall()]
            for table in tables:  # every column of every row, not only counts (which may skip data blocks)
                con.execute(f'SELECT count(*), sum(hash(COLUMNS(*))) FROM "{table}"').fetchall()
            for table, column in self._indexed_columns():  # values looked up one by one: through the index
                values = [r[0] for r in con.execute(f'SELECT DISTINCT "{column}" FROM "{table}" '
                                                     f'WHERE "{column}" IS NOT NULL ORDER BY 1').fetchall()]
                step = -(-len(values) // INDEX_PROBES)  # every value up to INDEX_PROBES, else evenly spread
                probes = values[::max(1, step)]
                for start in range(0, len(probes), 256):  # an equality on one value is answered through the index
                    chunk = probes[start:start + 256]
                    con.execute(" UNION ALL ".join([f'SELECT count(*) FROM "{table}" WHERE "{column}" = ?'] * len(chunk)),
                                chunk).fetchall()
            n = con.execute("SELECT count(*), sum(length(text) + length(metadata)) FROM records").fetchone()[0]
            per_role = dict(con.execute("SELECT embedder, count(*) FROM embeddings GROUP BY 1").fetchall())
        except duckdb.Error as exc:
            raise CorruptMemoryError(f"memory.duckdb is damaged ({str(exc)[:160]})") from exc
        return {"records": int(n), **{f"vectors.{k}": int(v) for k, v in per_role.items()}}

    def _indexed_columns(self) -> list[tuple[str, str]]:
        """(table, column) of every one-column index and primary key of the store's tables."""
        out = []
        for table, expr in self._con.execute("SELECT table_name, expressions FROM duckdb_indexes() "
                                             "WHERE schema_name = 'main'").fetchall():
            out.append((table, str(expr).strip("[]'\"")))
        for table, cols in self._con.execute("SELECT table_name, constraint_column_names FROM duckdb_constraints() "
                                             "WHERE schema_name = 'main' AND constraint_type = 'PRIMARY KEY'"
                                             ).fetchall():
            if len(cols) == 1:
                out.append((table, cols[0]))
        return [(t, c) for t, c in out if re.fullmatch(r"[a-z_]+", t) and re.fullmatch(r"[a-z_]+", c)]

    def close(self) -> None:
        """Close the connection (a writer's checkpoints what the log holds). A damaged block found by that
        checkpoint is a CorruptMemoryError, a refused write a StorageError; the connection is closed either way."""
        try:
            self._con.close()
        except duckdb.Error as exc:
            if refused(exc):
                raise _refusal(self.path, exc) from exc
            raise CorruptMemoryError(f"{self.path} could not be checkpointed at close ({type(exc).__name__}: "
                                     f"{str(exc)[:160]}); run memctl doctor {self.path.parent}") from exc


def snapshot(directory: Path, store_file: str, names: AbstractSet[str], tries: int = 5) -> tuple[Path, DuckDBStore]:
    """Copy a memory directory's files to a private temp dir and open its store read-only.

    The copy is taken without the writer's lock; a torn copy (the writer checkpointed
    meanwhile) fails to open and is retaken, up to ``tries`` times.
    """
    import shutil
    import tempfile
    import time

    last: Exception | None = None
    for attempt in range(tries):
        tmp = Path(tempfile.mkdtemp(prefix="selfmem-ro-"))
        try:
            for name in sorted(names, key=lambda n: n != store_file):  # the store first, its WAL right after
                src = directory / name
                if src.is_file():
                    shutil.copy2(src, tmp / name)
            return tmp, DuckDBStore(tmp / store_file, read_only=True)
        except (CorruptMemoryError, OSError, duckdb.Error) as exc:
            last = exc
            shutil.rmtree(tmp, ignore_errors=True)
            time.sleep(0.05 * (attempt + 1))
    raise CorruptMemoryError(f"could not open a snapshot of {directory} after {tries} tries (last error: {last}). "
                             "If a writer was checkpointing, try again; if this persists, memory.duckdb is damaged: "
                             "restore it from a backup")


def _blob_matrix(column: Any) -> np.ndarray:
    """Rows of equal-length float32 BLOBs (an Arrow binary column, chunked or not) as one (n, dim) array,
    without a Python object per row (1M rows: a copy of the bytes instead of a million tuples)."""
    chunks = [c for c in (column.chunks if hasattr(column, "chunks") else [column]) if len(c)]
    return np.concatenate([_blob_chunk(c) for c in chunks]) if chunks else np.zeros((0, 0), np.float32)


def _blob_chunk(arr: Any) -> np.ndarray:
    import pyarrow as pa

    if not (pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type)):
        arr = arr.cast(pa.large_binary())
    n = len(arr)
    if n == 0:
        return np.zeros((0, 0), np.float32)
    _, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64 if pa.types.is_large_binary(arr.type) else np.int32)
    offsets = offsets[arr.offset:arr.offset + n + 1].astype(np.int64)
    width = int(offsets[1] - offsets[0])
    if width % 4 or not np.array_equal(np.diff(offsets), np.full(n, width)):
        raise CorruptMemoryError("stored vectors of one embedder have different lengths; run memctl doctor")
    data = np.frombuffer(data_buf, dtype=np.uint8)[offsets[0]:offsets[-1]]
    return data.view(np.float32).reshape(n, width // 4)
