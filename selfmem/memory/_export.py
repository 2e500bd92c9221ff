"""Exporting a memory's records (JSON Lines or Parquet) and importing an exported JSONL file back.

JSONL lines carry what ``import`` needs to rebuild the memory (text, kind, metadata, session,
created_at, importance, parents, key) plus the record's old id and its topic path. Parquet adds the
raw vectors of every embedder (``FLOAT[dim]`` columns named after the role). Rows are read in
chunks of ``CHUNK`` records, so a memory of any size exports in bounded memory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .._errors import DependencyError, InvalidInputError, StorageError
from .._files import atomic_write, check_output
from .._types import JSON
from ..clustering._tree import lineage
from ..store import Store
from ..store._protocol import PageRow

__all__ = ["export_records", "FORMATS", "CHUNK"]

FORMATS = ("jsonl", "parquet")
CHUNK = 20_000


def _topic_paths(store: Store) -> tuple[dict[int, int], dict[int, tuple[list[int], list[str]]]]:
    """Each record's rank-0 topic, and each topic's path from the top (ids, labels)."""
    parents, label, member = store.topic_tree()
    paths = {tid: (ids, [label[t] for t in ids]) for tid in parents for ids in [lineage(parents, tid)]}
    return member, paths


def _chunks(store: Store) -> Iterator[list[PageRow]]:
    last = 0
    while True:
        rows = store.page(last, CHUNK)
        if not rows:
            return
        yield rows
        last = int(rows[-1].id)


def _iso(ts: datetime) -> str:
    return ts.replace(tzinfo=timezone.utc).isoformat()


def _line(row: PageRow, member: dict[int, int], paths: dict[int, tuple[list[int], list[str]]]) -> dict[str, JSON]:
    rid = int(row.id)
    tids, labels = paths.get(member.get(rid, -1), ([], []))
    return {"id": rid, "text": row.text, "kind": row.kind, "metadata": json.loads(row.metadata),
            "session": row.session, "created_at": _iso(row.created_at), "importance": float(row.importance),
            "parents": [int(p) for p in row.parents or ()], "key": row.key, "topic_ids": tids, "topic_path": labels}


def _write_jsonl(store: Store, out: Path, tick: Callable[[int], None]) -> int:
    member, paths = _topic_paths(store)
    n = 0

    def write(fh: BinaryIO) -> None:
        nonlocal n
        for rows in _chunks(store):
            for row in rows:
                fh.write(json.dumps(_line(row, member, paths), ensure_ascii=False).encode("utf-8") + b"\n")
            n += len(rows)
            tick(len(rows))

    atomic_write(out, write)
    return n


def _write_parquet(store: Store, out: Path, roles: dict[str, int], tick: Callable[[int], None]) -> int:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise DependencyError("Parquet export needs pyarrow: pip install pyarrow") from exc
    member, paths = _topic_paths(store)
    n = 0
    tmp = out.with_name(out.name + ".tmp")
    writer = None
    try:
        for rows in _chunks(store):
            lines = [_line(row, member, paths) for row in rows]
            ids = np.array([ln["id"] for ln in lines], dtype=np.int64)
            cols: dict[str, Any] = {
                "id": pa.array(ids), "text": pa.array([ln["text"] for ln in lines]),
                "kind": pa.array([ln["kind"] for ln in lines]),
                "metadata": pa.array([row.metadata for row in rows]),  # stored as JSON text already
                "session": pa.array([ln["session"] for ln in lines], pa.string()),
                "created_at": pa.array([row.created_at for row in rows], pa.timestamp("us", tz="UTC")),
                "importance": pa.array([ln["importance"] for ln in lines], pa.float64()),
                "parents": pa.array([ln["parents"] for ln in lines], pa.list_(pa.int64())),
                "key": pa.array([ln["key"] for ln in lines], pa.string()),
                "topic_ids": pa.array([ln["topic_ids"] for ln in lines], pa.list_(pa.int64())),
                "topic_path": pa.array([ln["topic_path"] for ln in lines], pa.list_(pa.string())),
            }
            for role, dim in roles.items():
                got, vecs = store.vectors(role, ids.tolist())
                full = np.full((len(ids), dim), np.nan, dtype=np.float32)
                full[np.searchsorted(ids, got)] = vecs
                cols[role] = pa.FixedSizeListArray.from_arrays(pa.array(full.reshape(-1)), dim)
            table = pa.table(cols)
            if writer is None:
                writer = pq.ParquetWriter(str(tmp), table.schema, compression="zstd")
            writer.write_table(table)
            n += len(rows)
            tick(len(rows))
        if writer is None:  # an empty memory: an empty file with the columns
            pq.write_table(pa.table({"id": pa.array([], pa.int64()), "text": pa.array([], pa.string())}), str(tmp))
        else:
            writer.close()
            writer = None
        os.replace(tmp, out)
    finally:
        if writer is not None:
            writer.close()
        if tmp.exists():
            tmp.unlink()
    return n


def export_records(store: Store, out: str | os.PathLike[str], fmt: str, roles: dict[str, int],
                   tick: Callable[[int], None], protect: tuple[Path, ...] = ()) -> int:
    """Write every record of ``store`` to ``out`` as ``fmt`` ('jsonl' or 'parquet'); return the count.

    ``roles`` maps embedder role to dimension (Parquet vector columns); ``tick(n)`` is called per chunk.
    The file is written to a temp name and renamed, so ``out`` is never half-written; a target inside a
    memory directory (``protect``: the exported one, besides any found above ``out``) is refused.
    """
    if fmt not in FORMATS:
        raise InvalidInputError(f"format must be one of {FORMATS}, got {fmt!r}")
    path = check_output(out, protect=protect)
    try:
        return _write_jsonl(store, path, tick) if fmt == "jsonl" else _write_parquet(store, path, roles, tick)
    except OSError as exc:
        raise StorageError(f"could not write {path}: {exc}; free space or choose another path (the memory is "
                           "unchanged)") from exc
