"""Fault matrix: every derived file x every kind of damage; each must be detected and repaired to the results
of a clean rebuild, without a raw exception.

Usage::

    python benchmarks/faults.py [--dir runs/faults] [--json]

Two memories are built with the hash embedders (dual view with an own-model whitening, topics, and an
IVF-PQ index with its re-rank files: 1,500 records), plus a second memory with the same config and the
same ids ("foreign"). For each derived file and each damage (missing, empty, truncated, garbage, bit
flips, a copy from the foreign memory), a copy of the memory is damaged, opened for writing and
searched with 40 of its own texts (dense and hybrid). Counted:

- detected: the open warned about the file, or rewrote it;
- repaired: every result list equals the undamaged memory's;
- raw: an exception that is not a SelfmemError.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import warnings
from pathlib import Path

import numpy as np

from selfmem import EmbeddingConfig, IndexConfig, Memory, MemoryConfig, SelfmemError, TopicsConfig

CFG = MemoryConfig(embedding=EmbeddingConfig(general="hash:48", own="hash:24", mode="dual", own_dim=8, own_min_fit=50),
                   index=IndexConfig(kind="ivfpq", ivf_threshold=1000), topics=TopicsConfig(min_records=50))
FILES = ["index.faiss", "index.json", "rerank.f16", "rerank.ids", "keywords.npz", "own_whitener.npz", "topics.npz"]
DAMAGES = ["missing", "empty", "truncated", "garbage", "bit flips", "foreign copy"]


def build(path: Path, texts: list[str]) -> None:
    with Memory(path, CFG, progress=False) as mem:
        mem.add_many(texts)
        mem.wait()


def results(mem: Memory, queries: list[str]) -> list[list[int]]:
    return [[h.record.id for h in mem.search(q, k=5, mode=mode)] for q in queries for mode in ("dense", "hybrid")]


def damage(path: Path, how: str, foreign: Path, rng: random.Random) -> None:
    data = bytearray(path.read_bytes())
    if how == "missing":
        path.unlink()
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "truncated":
        path.write_bytes(bytes(data[: len(data) // 2]))
    elif how == "garbage":
        lo = len(data) // 4
        data[lo:lo + max(64, len(data) // 4)] = bytes(rng.randrange(256) for _ in range(max(64, len(data) // 4)))
        path.write_bytes(bytes(data))
    elif how == "bit flips":
        for _ in range(16):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(data))
    else:
        shutil.copy2(foreign / path.name, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default="runs/faults")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    root = Path(args.dir)
    shutil.rmtree(root, ignore_errors=True)
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(400)]
    texts = [" ".join(rng.choice(words, 6)) for _ in range(1500)]
    build(root / "clean", texts)
    build(root / "foreign", texts[::-1])
    queries = texts[::37][:40]
    with Memory(root / "clean", CFG, progress=False) as mem:
        want = results(mem, queries)
    rows, r = [], random.Random(0)
    for name in FILES:
        for how in DAMAGES:
            case = root / f"{name}-{how.replace(' ', '-')}"
            shutil.copytree(root / "clean", case)
            before = (case / name).read_bytes() if (case / name).exists() else b""
            damage(case / name, how, root / "foreign", r)
            damaged = (case / name).read_bytes() if (case / name).exists() else None
            row = {"file": name, "damage": how, "detected": False, "repaired": False, "raw": None}
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    with Memory(case, CFG, progress=False) as mem:
                        mem.wait()
                        got = results(mem, queries)
                now = (case / name).read_bytes() if (case / name).exists() else None
                row["detected"] = how == "missing" or damaged == before or any(name in str(w.message) for w in caught) \
                    or now != damaged
                row["unchanged"] = damaged == before  # the damage hit nothing the file depends on
                row["repaired"] = got == want
            except SelfmemError as exc:
                row["error"] = f"{type(exc).__name__}: {exc}"[:160]
            except Exception as exc:  # noqa: BLE001 - counted as a raw exception, the number that must be 0
                row["raw"] = f"{type(exc).__name__}: {exc}"[:160]
            rows.append(row)
    summary = {"cases": len(rows), "detected": sum(r["detected"] for r in rows),
               "repaired to identical results": sum(r["repaired"] for r in rows),
               "raw exceptions": sum(r["raw"] is not None for r in rows),
               "not repaired": [(r["file"], r["damage"], r.get("error") or r.get("raw")) for r in rows if not r["repaired"]]}
    print(json.dumps(summary if args.json else {"summary": summary, "cases": rows}, indent=1))


if __name__ == "__main__":
    main()
