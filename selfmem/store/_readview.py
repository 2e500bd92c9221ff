"""The read view: Parquet files that a writer publishes so that readers never copy or lock the store.

DuckDB lets one process write a database file and keeps every other process out, readers too, so
a read-only open used to copy the whole memory directory (about 4 kB per record with the real models).
Instead the writer publishes the store's tables under ``view/`` and readers query those files
through an in-memory DuckDB connection whose views carry the store's table names, so every
:class:`DuckDBStore` query runs unchanged on them.

- ``records`` and ``embeddings`` are published as append-only *segments*: each publication writes
  the records added since the previous one (ids are increasing), merged with the newest segments while
  the newest is not more than twice as large (a binary counter: O(log N) segments, each record
  rewritten O(log N) times over a memory's life). A delete or a re-embedding makes the next publication
  write one segment of everything.
- ``meta``, ``sessions``, ``topics``, ``memberships`` and ``edges`` are rewritten when they changed
  (they change in place: topic refits, relinked edges); a digest of each tells.
- ``manifest.json`` names the files of one consistent state (all written from one read transaction)
  and is replaced atomically last. A reader opens whatever manifest is current.
- A reader *pins* the files of the manifest it opens: it hard-links them into its own directory
  ``view/.readers/<pid>-<random>/`` (no data is copied) and reads them there, so it keeps working
  however long it stays open, whatever the writer publishes meanwhile. Files that a new manifest no
  longer names are deleted ``RETIRE_AFTER`` seconds later (the time a reader needs between reading the
  manifest and linking its files); the pin directories of readers that died are removed too. Where the
  directory is not writable for the reader, it reads the files in place (unpinned).

The derived files (index, re-rank vectors, keywords, whitening, topic model) are read in place:
they are replaced atomically (the re-rank files only grow), and each reader reconciles them with the
view as a writer does with its store, keeping whatever it must add in its own memory.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

import duckdb

from .._errors import CorruptMemoryError
from .._files import atomic_write
from .._types import JSON
from ._duckdb import DuckDBStore
from ._protocol import Store

__all__ = ["VIEW_DIR", "MANIFEST", "TABLES", "publish", "retire", "read_manifest", "view_files", "behind", "pin",
           "open_view", "open_published", "Unpinnable"]

VIEW_DIR = "view"
MANIFEST = "manifest.json"
FORMAT = 1
RETIRE_AFTER = 60.0
READERS = ".readers"
TABLES = ("meta", "sessions", "topics", "memberships", "edges")
"""Tables published whole, when their digest changed (records and embeddings go in segments)."""
_EMPTY = {  # shapes of tables a store may lack (a memory made before they existed)
    "topics": "id BIGINT, parent BIGINT, level INTEGER, size BIGINT, centroid BLOB, label VARCHAR, "
              "keywords VARCHAR, provisional BOOLEAN",
    "memberships": "record_id BIGINT, topic_id BIGINT, prob DOUBLE, rank INTEGER",
    "edges": "src VARCHAR, rel VARCHAR, dst VARCHAR, weight DOUBLE, created_at TIMESTAMP, props VARCHAR",
}


def read_manifest(directory: Path) -> dict[str, JSON] | None:
    """The current manifest of ``directory``'s read view, or None when there is none (or it is unreadable)."""
    try:
        data = json.loads((directory / VIEW_DIR / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None


def behind(manifest: Mapping[str, JSON] | None, store: Store) -> str | None:
    """Why ``manifest`` does not show ``store`` as it is now, or None when it does."""
    if manifest is None:
        return "no read view is published"
    if manifest.get("store_id") != store.store_id:
        return "the read view was published from another store"
    if manifest.get("embedders") != store.meta_items("embedder."):
        return "the read view holds the vectors of other embedders"
    n = store.count()
    if int(manifest["records"]) != n:
        return f"the read view shows {manifest['records']} of {n} records"
    return None


def _sql_path(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _copy(con: duckdb.DuckDBPyConnection, query: str, target: Path) -> None:
    """``query``'s rows to the Parquet file ``target`` (temp file + rename); a refused write is an OSError."""
    tmp = target.with_name(target.name + ".tmp")
    try:
        con.execute(f"COPY ({query}) TO {_sql_path(tmp)} (FORMAT parquet, COMPRESSION zstd)")
    except duckdb.IOException as exc:
        tmp.unlink(missing_ok=True)
        raise OSError(f"could not write {target.name}: {str(exc)[:200]}") from exc
    os.replace(tmp, target)


def publish(store: DuckDBStore, directory: Path, previous: Mapping[str, JSON] | None, *, full: bool = False
            ) -> dict[str, JSON]:
    """Write the view files of ``store``'s current state; return the manifest to install (not yet installed).

    Run it inside one read transaction (``store.read_transaction()``) so that every file shows one state.

    Parameters
    ----------
    store : Store
    directory : Path
        The memory directory (files go to ``directory/view``).
    previous : mapping or None
        The manifest in place; its segments are kept when the store only grew since.
    full : bool
        Write every record again (after a delete or a re-embedding).
    """
    vdir = directory / VIEW_DIR
    vdir.mkdir(exist_ok=True)
    con = store._con  # this module is the DuckDB store's own
    gen = int(previous["generation"]) + 1 if previous else 1
    hi, count = (int(x) for x in con.execute("SELECT coalesce(max(id), 0), count(*) FROM records").fetchone())
    embedders = store.meta_items("embedder.")
    prev: Mapping[str, JSON] = previous or {}
    keep = (previous is not None and not full and prev.get("store_id") == store.store_id
            and prev.get("embedders") == embedders)
    if keep:
        lo = int(prev["max_id"])
        before = con.execute("SELECT count(*) FROM records WHERE id <= ?", [lo]).fetchone()[0]
        keep = int(before) == int(prev["records"])  # nothing published was deleted
    segments = list(prev["segments"]) if keep else []
    lo = int(prev["max_id"]) if keep else 0
    if hi > lo:
        n = int(con.execute("SELECT count(*) FROM records WHERE id > ? AND id <= ?", [lo, hi]).fetchone()[0])
        while segments and _count(segments[-1]) <= 2 * n:  # merge: the segments stay few and growing
            merged = segments.pop()
            lo, n = int(merged["lo"]), n + _count(merged)
        rec, emb = f"records-{gen}.parquet", f"embeddings-{gen}.parquet"
        _copy(con, f"SELECT * FROM records WHERE id > {lo} AND id <= {hi}", vdir / rec)
        _copy(con, f"SELECT * FROM embeddings WHERE record_id > {lo} AND record_id <= {hi}", vdir / emb)
        segments.append({"records": rec, "embeddings": emb, "lo": lo, "hi": hi, "count": n})
    tables: dict[str, str] = {}
    digests: dict[str, str] = {}
    old_tables, old_digests = (previous or {}).get("tables", {}), (previous or {}).get("digests", {})
    for table in TABLES:
        if store.has_table(table):
            n_rows, digest = con.execute(f"SELECT count(*), bit_xor(hash(t)) FROM {table} AS t").fetchone()
            digests[table] = f"{n_rows}:{digest}"
            if old_digests.get(table) == digests[table] and table in old_tables and \
                    (vdir / old_tables[table]).is_file():
                tables[table] = old_tables[table]  # unchanged: keep the file
                continue
            tables[table] = f"{table}-{gen}.parquet"
            _copy(con, f"SELECT * FROM {table}", vdir / tables[table])
    return {"format": FORMAT, "generation": gen, "store_id": store.store_id, "embedders": embedders,
            "published_at": time.time(), "records": count, "max_id": hi, "segments": segments,
            "tables": tables, "digests": digests, "retired": list(previous.get("retired", [])) if previous else []}


def _count(segment: Mapping[str, JSON]) -> int:
    return int(segment.get("count", int(segment["hi"]) - int(segment["lo"])))


def view_files(manifest: Mapping[str, JSON]) -> set[str]:
    """The names of the files a manifest reads (in ``view/``)."""
    names = set(manifest["tables"].values())
    for seg in manifest["segments"]:
        names |= {seg["records"], seg["embeddings"]}
    return names


def retire(directory: Path, manifest: dict[str, JSON], previous: Mapping[str, JSON] | None) -> None:
    """Install ``manifest`` atomically; delete files retired more than ``RETIRE_AFTER`` seconds ago."""
    vdir = directory / VIEW_DIR
    now = time.time()
    live = view_files(manifest)
    retired = [r for r in manifest.get("retired", []) if r["file"] not in live]
    if previous is not None:
        retired += [{"file": f, "at": now} for f in sorted(view_files(previous) - live)]
    due = {r["file"] for r in retired if now - r["at"] >= RETIRE_AFTER}
    manifest["retired"] = [r for r in retired if r["file"] not in due]
    atomic_write(vdir / MANIFEST, json.dumps(manifest, sort_keys=True))
    for name in due:
        (vdir / name).unlink(missing_ok=True)
    _remove_dead_pins(vdir / READERS)
    listed = live | {r["file"] for r in manifest["retired"]} | {MANIFEST, READERS}
    for stray in vdir.iterdir():  # left by a publication that a crash interrupted
        try:
            if stray.name not in listed and now - stray.stat().st_mtime >= RETIRE_AFTER:
                stray.unlink()
        except OSError:
            continue


class Unpinnable(Exception):
    """A file of the manifest was retired before the reader could link it: read the manifest again."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _remove_dead_pins(readers: Path) -> None:
    """Remove the pin directories of readers whose process has ended (a reader removes its own at close)."""
    if not readers.is_dir():
        return
    for pin in readers.iterdir():
        pid = pin.name.split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(pin, ignore_errors=True)


def pin(directory: Path, manifest: Mapping[str, JSON]) -> Path | None:
    """Hard-link the manifest's files into a new reader directory; None where that cannot be done here
    (a read-only file system, another user's memory): the reader then reads the files in place.

    Raises Unpinnable when a file is gone (retired meanwhile): read the manifest again.
    """
    vdir = directory / VIEW_DIR
    target = vdir / READERS / f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
    try:
        target.mkdir(parents=True)
    except OSError:
        return None
    try:
        for name in view_files(manifest):
            os.link(vdir / name, target / name)
    except FileNotFoundError as exc:
        shutil.rmtree(target, ignore_errors=True)
        raise Unpinnable(str(exc)) from exc
    except OSError:  # no hard links here (another file system, permissions)
        shutil.rmtree(target, ignore_errors=True)
        return None
    return target


def open_view(directory: Path, manifest: Mapping[str, JSON], store_file: str, pinned: Path | None = None) -> DuckDBStore:
    """A read-only :class:`Store` over the view files named by ``manifest`` (no lock, no copy), read from
    ``pinned`` (see :func:`pin`) when given.

    The small tables (meta, sessions, topics) are loaded into memory; the others stay in their Parquet
    files, queried in place (at 100k memories, loading and indexing the edges took 0.3 s of every open).
    Raises CorruptMemoryError when a file named by the manifest is missing or unreadable.
    """
    vdir = pinned or directory / VIEW_DIR
    con = duckdb.connect(":memory:")
    try:
        for table, name in manifest["tables"].items():
            kind = "TABLE" if table in ("meta", "sessions", "topics") else "VIEW"
            con.execute(f"CREATE {kind} {table} AS SELECT * FROM read_parquet({_sql_path(vdir / name)})")
        for table, shape in _EMPTY.items():
            if table not in manifest["tables"]:
                con.execute(f"CREATE TABLE {table} ({shape})")
        for table in ("records", "embeddings"):
            files = [vdir / seg[table] for seg in manifest["segments"]]
            if files:
                con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet([{', '.join(map(_sql_path, files))}])")
        if not manifest["segments"]:
            con.execute("CREATE TABLE records (id BIGINT, kind VARCHAR, text VARCHAR, metadata VARCHAR, "
                        "session VARCHAR, created_at TIMESTAMP, importance DOUBLE, use_count INTEGER, "
                        "last_used_at TIMESTAMP, parents BIGINT[], key VARCHAR)")
            con.execute("CREATE TABLE embeddings (record_id BIGINT, embedder VARCHAR, vector BLOB)")
        con.execute("CREATE TABLE graph_journal (seq BIGINT, op VARCHAR, ids BIGINT[])")
    except duckdb.Error as exc:
        con.close()
        raise CorruptMemoryError(f"the read view of {directory} is unreadable ({str(exc)[:200]}); open the memory "
                                 "for writing once (or run memctl doctor --repair) to publish it again") from exc
    store = DuckDBStore(directory / store_file, _con=con)
    store.view_manifest = dict(manifest)
    return store


def open_published(directory: Path, store_file: str = "memory.duckdb", tries: int = 5
                   ) -> tuple[DuckDBStore, Path | None] | None:
    """Open the current read view of ``directory``, pinned: ``(store, pin directory or None)``; None when
    no view is published. A manifest replaced while it was being pinned is read again."""
    for _ in range(tries):
        manifest = read_manifest(directory)
        if manifest is None:
            return None
        try:
            pinned = pin(directory, manifest)
        except Unpinnable:
            continue
        try:
            return open_view(directory, manifest, store_file, pinned), pinned
        except BaseException:
            if pinned is not None:
                shutil.rmtree(pinned, ignore_errors=True)
            raise
    raise CorruptMemoryError(f"the read view of {directory} changed {tries} times while it was being opened; "
                             "try again")
