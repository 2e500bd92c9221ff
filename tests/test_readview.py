"""The read view: readers read a writer's published Parquet files and derived files in place, never writing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from selfmem import CorruptMemoryError, IndexConfig, Memory
from selfmem.store import _readview as _view
from helpers import hash_cfg, wait_until

INLINE = hash_cfg(background=False,
                      view_interval=0.0)


def texts(n: int, start: int = 0) -> list[str]:
    return [f"note {i} about {('grids', 'colours', 'counts')[i % 3]}" for i in range(start, start + n)]


def digest(path: Path) -> dict[str, str]:
    """sha256 of every file outside the store and the view (what a reader must never change)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.iterdir())
            if p.is_file() and not p.name.startswith("memory.duckdb")}


def test_a_reader_never_writes_into_the_memory_even_when_its_ivfpq_index_lags(tmp_path):
    cfg = INLINE.replace(index=IndexConfig(ivf_threshold=1000))
    path = tmp_path / "m"
    with Memory(path, cfg, progress=False) as m:
        m.add_many(texts(1500))
    writer = Memory(path, cfg, progress=False)
    try:
        writer.add_many(texts(300, start=1500))  # published at once (view_interval 0); index.faiss is not saved
        before = digest(path)
        assert json.loads((path / "index.json").read_text())["count"] == 1500
        with Memory(path, read_only=True) as ro:
            assert all(p.parent.name == ".readers" for p in ro._state.private) and len(ro) == 1800
            assert ro.stats().index["size"] == 1800  # caught up in the reader's own memory
            hit = ro.search("note 1799 about counts", k=1, mode="keyword")[0]
            assert hit.record.id == 1800 and ro.get(1800).text == "note 1799 about counts"
            assert ro.search("note 1799 about counts", k=3, mode="dense")
            assert any(f.part == "index" for f in ro.stats().health)  # the saved index lags: said, with its fix
        assert digest(path) == before
        assert not (path / ".refit-index").exists()
    finally:
        writer.close()
    with Memory(path, read_only=True) as ro:
        assert not any(f.part == "index" for f in ro.stats().health)


def test_segments_deletes_and_merges(tmp_path, monkeypatch):
    monkeypatch.setattr(_view, "RETIRE_AFTER", 0.0)
    path = tmp_path / "m"
    with Memory(path, INLINE, progress=False) as m:
        m.add_many(texts(40))
        for i in range(3):
            m.add_many(texts(5, start=40 + 5 * i))
            manifest = _view.read_manifest(path)
            assert manifest["records"] == 45 + 5 * i
        assert [s["count"] for s in manifest["segments"]] == [40, 15]  # 5 + 5 merged, then + 5 merged
        assert manifest["tables"]["meta"] == "meta-1.parquet"  # unchanged tables keep their file
        m.delete(3)
        manifest = _view.read_manifest(path)
        assert manifest["records"] == 54 and len(manifest["segments"]) == 1  # a delete: everything, once
        with Memory(path, read_only=True) as ro:
            assert len(ro) == 54 and 3 not in ro.points().ids.tolist()
        for i in range(40):
            m.add(f"more {i}")
        counts = [s["count"] for s in _view.read_manifest(path)["segments"]]
        assert sum(counts) == 94 and len(counts) <= 7 and all(a > 2 * b for a, b in zip(counts, counts[1:]))
    names = {p.name for p in (path / "view").iterdir()}
    manifest = _view.read_manifest(path)
    live = set(manifest["tables"].values()) | {s[c] for s in manifest["segments"] for c in ("records", "embeddings")}
    assert names - live <= {"manifest.json", ".readers"} | {r["file"] for r in manifest["retired"]}
    with Memory(path, read_only=True) as ro:
        assert len(ro) == 94


def test_a_reader_keeps_working_after_the_writer_republishes(tmp_path, monkeypatch):
    monkeypatch.setattr(_view, "RETIRE_AFTER", 0.0)  # retired files are deleted at once
    path = tmp_path / "m"
    with Memory(path, INLINE, progress=False) as m:
        m.add_many(texts(30))
    ro = Memory(path, read_only=True)
    try:
        pin = ro._state.private[0]
        assert pin is not None and pin.parent == path / "view" / ".readers"
        with Memory(path, INLINE, progress=False) as m:
            m.delete(1)  # a full republication: every file the reader opened is retired and deleted
            m.add_many(texts(5, start=30))
        old = {p.name for p in pin.iterdir()} - {p.name for p in (path / "view").iterdir()}
        assert old  # gone from view/, still linked in the reader's pin
        assert len(ro) == 30 and ro.search("note 2", k=1) and ro.points().total == 30
    finally:
        ro.close()
    assert not pin.exists()
    with Memory(path, read_only=True) as ro:
        assert len(ro) == 34
        disk = ro.stats().disk["view/"]
    files = [p for p in (path / "view").iterdir() if p.is_file()]
    assert disk == sum(p.stat().st_size for p in files)  # the reader's own hard links are not counted twice


def test_pins_of_dead_readers_are_removed(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "m"
    with Memory(path, INLINE, progress=False) as m:
        m.add_many(texts(10))
    code = "import os, sys; from selfmem import Memory; m = Memory(sys.argv[1], read_only=True); os._exit(0)"
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)  # a reader that dies without close()
    assert len(list((path / "view" / ".readers").iterdir())) == 1
    with Memory(path, INLINE, progress=False) as m:
        m.add("one more")
    assert list((path / "view" / ".readers").iterdir()) == []


def test_without_a_view_a_reader_copies_once_and_a_writer_publishes_it(tmp_path):
    import shutil

    path = tmp_path / "m"
    with Memory(path, INLINE, progress=False) as m:
        m.add_many(texts(20))
    shutil.rmtree(path / "view")  # a memory written by an older selfmem
    with Memory(path, read_only=True) as ro:
        copy = ro._state.private[0]
        assert copy is not None and len(ro) == 20
    assert not copy.exists()
    with Memory(path, INLINE, progress=False):
        pass
    with Memory(path, read_only=True) as ro:
        assert all(p.parent.name == ".readers" for p in ro._state.private) and len(ro) == 20


def test_a_damaged_view_is_a_clear_error(tmp_path):
    path = tmp_path / "m"
    with Memory(path, INLINE, progress=False) as m:
        m.add_many(texts(20))
    manifest = _view.read_manifest(path)
    (path / "view" / manifest["segments"][0]["records"]).write_bytes(b"not parquet")
    with pytest.raises(CorruptMemoryError, match="memctl doctor --repair"):
        with Memory(path, read_only=True) as ro:
            len(ro)


def test_publishing_while_idle_from_the_publisher_thread(tmp_path):
    """With background refits a writer that adds and then sits idle is published within seconds."""

    path = tmp_path / "m"
    cfg = INLINE.replace(background=True, view_interval=0.1)
    with Memory(path, cfg, progress=False) as m:
        m.add_many(texts(7))
        wait_until(lambda: (_view.read_manifest(path) or {}).get("records") == 7, 10, "the view with 7 records")
