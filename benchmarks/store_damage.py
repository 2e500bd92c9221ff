"""Damage to the store itself: 64 bytes flipped at N offsets of ``memory.duckdb``; every call ends as it should.

Usage::

    python benchmarks/store_damage.py [--offsets 24] [--dir runs/store-damage] [--json] [--cli]

A memory of 1,500 records (hash embedders, topics, graph) is built and closed. For each offset (evenly
spread over the file, the 4 KiB header included), a copy is damaged and then, each on a fresh copy:
``doctor``, open + search + close, add + close, rebuild + close (and with ``--cli`` the same through
``memctl doctor``, ``memctl add`` and ``memctl rebuild``). Each outcome is one of ``ok``, ``corrupt``
(CorruptMemoryError; memctl exit 3), ``storage`` (StorageError, exit 7) or ``raw: <type>`` (anything
else, memctl exit 70). Counted:

- raw: outcomes that are neither ok nor a SelfmemError (must be 0);
- disagree: offsets where a call reported damage but ``doctor`` called the memory healthy (must be 0).
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

from selfmem import (CorruptMemoryError, EmbeddingConfig, Memory, MemoryConfig, SelfmemError, StorageError,
                     TopicsConfig, doctor)

CFG = MemoryConfig(embedding=EmbeddingConfig(general="hash:48", mode="general", own=None),
                   topics=TopicsConfig(min_records=50))
STORE = "memory.duckdb"


def outcome(fn: Callable[[], Any]) -> str:
    try:
        fn()
    except CorruptMemoryError:
        return "corrupt"
    except StorageError:
        return "storage"
    except SelfmemError as exc:
        return f"selfmem: {type(exc).__name__}"
    except Exception as exc:  # what this benchmark counts: a raw error is a defect
        return f"raw: {type(exc).__name__}"
    return "ok"


def _search(path: Path) -> None:
    with Memory(path, progress=False) as mem:
        for q in ("grid rotated", "colour 7", "note 1200"):
            mem.search(q, k=5)
            mem.search(q, k=5, mode="keyword")
        mem.topics()
        mem.neighbours(1)


def _add(path: Path) -> None:
    with Memory(path, progress=False) as mem:
        mem.add_many([f"a new note {i} about a mirrored grid" for i in range(20)])


def _rebuild(path: Path) -> None:
    with Memory(path, progress=False) as mem:
        mem.rebuild()


def _doctor(path: Path) -> None:
    if not doctor(path).healthy:
        raise CorruptMemoryError("doctor found problems")


CALLS = {"doctor": _doctor, "search": _search, "add": _add, "rebuild": _rebuild}
CLI = {"memctl doctor": ["doctor"], "memctl add": ["add", "--kind", "note", "a note from the cli"],
       "memctl rebuild": ["rebuild"]}
CLI_OUTCOME = {0: "ok", 3: "corrupt", 7: "storage"}


def build(path: Path, n: int = 1500) -> None:
    shutil.rmtree(path, ignore_errors=True)
    with Memory(path, CFG, progress=False) as mem:
        mem.add_many([f"note {i}: the grid is rotated {i % 4} times, colour {i % 10}" for i in range(n)])


def damaged_copy(src: Path, dst: Path, offset: int) -> None:
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    with open(dst / STORE, "r+b") as fh:
        fh.seek(offset)
        data = bytearray(fh.read(64))
        fh.seek(offset)
        fh.write(bytes(b ^ 0xFF for b in data))


def trial(clean: Path, work: Path, offset: int, cli: bool) -> dict[str, Any]:
    row: dict[str, Any] = {"offset": offset}
    for name, fn in CALLS.items():
        damaged_copy(clean, work, offset)
        row[name] = outcome(functools.partial(fn, work))
    if cli:
        memctl = Path(sys.executable).with_name("memctl")
        for name, args in CLI.items():
            damaged_copy(clean, work, offset)
            cmd = [str(memctl), args[0], str(work), *args[1:]]
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            row[name] = CLI_OUTCOME.get(res.returncode, f"exit {res.returncode}")
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--offsets", type=int, default=24)
    ap.add_argument("--dir", default="runs/store-damage")
    ap.add_argument("--cli", action="store_true", help="also run memctl doctor/add/rebuild on each damaged copy")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    root = Path(args.dir)
    root.mkdir(parents=True, exist_ok=True)
    clean = root / "clean"
    build(clean)
    size = (clean / STORE).stat().st_size
    offsets = [int(i * (size - 64) / max(1, args.offsets - 1)) for i in range(args.offsets)]
    rows = []
    for off in offsets:
        row = trial(clean, root / "work", off, args.cli)
        rows.append(row)
        print(json.dumps(row), flush=True)
    calls = [k for k in rows[0] if k != "offset"]
    raw = sum(1 for r in rows for k in calls if r[k] not in ("ok", "corrupt", "storage"))
    disagree = sum(1 for r in rows if r["doctor"] == "ok" and any(r[k] == "corrupt" for k in calls))
    summary = {"offsets": len(rows), "file_bytes": size, "raw": raw, "disagree": disagree,
               "doctor_found": sum(1 for r in rows if r["doctor"] == "corrupt")}
    print(json.dumps(summary) if args.json else f"summary: {summary}")


if __name__ == "__main__":
    main()
