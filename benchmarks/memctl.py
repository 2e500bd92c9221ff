"""memctl on a 100k-memory store with the real models: inspect, search, topics and map, idle and beside a writer.

Usage: python benchmarks/memctl.py [--data ../shared/data] [--n 100000] [--path runs/bench/memctl-100k]
                                   [--out docs/results/memctl-DATE] [--runs 5]

The store: AG News titles and description sentences and LoCoMo turns (about 23k distinct texts), cycled
to ``--n`` records in sessions of 500 (kinds output/task/note by position). Embedding runs once per
distinct text through the real models (a memo in front of MiniLM and SmolLM2: the stored vectors are
exactly what embedding every record would give); the memory itself (index, IVF-PQ, keywords,
topics, graph, read view) is built by ``Memory.add_many`` as a solver's would be. The build is reused
when ``--path`` already holds ``--n`` records.

Each memctl command runs as a new process (``.venv/bin/memctl``, process start, imports and model
loads included), ``--runs`` times: with no writer, then while a writer process adds 20 records a second
to the same memory. Targets (issue 16): inspect < 2 s, search < 3 s, map < 3 min and < 30 MB.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import re
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from selfmem import Memory  # noqa: E402
from selfmem._config import EmbeddingConfig  # noqa: E402
from selfmem.retrieval._models import make_embedder, make_own_embedder  # noqa: E402

QUERIES = ["oil prices rise after the storm", "the team won the championship", "new phone chip from intel",
           "when did Caroline go to the support group", "stocks fall on interest rate fears",
           "a painting of a sunset by the lake", "elections in the middle east"]

WRITER = r"""
import sys, time
from selfmem import Memory
with Memory(sys.argv[1], progress=False) as m:
    print("ready", flush=True)
    i = 0
    while True:
        with m.session("live-writer"):
            m.add_many([f"live note {i} {j}: the writer keeps adding while memctl reads" for j in range(20)])
        i += 1
        time.sleep(1.0)
"""


class Memo:
    """An embedder that runs the wrapped one once per distinct text (same fingerprint, same vectors)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.dim = inner.dim
        self.cache: dict[str, np.ndarray] = {}

    def fingerprint(self) -> dict[str, Any]:
        return self.inner.fingerprint()

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def embed(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        new = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if new:
            for t, v in zip(new, self.inner.embed(new, progress=progress)):
                self.cache[t] = v
        return np.stack([self.cache[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)


def corpus(data: Path) -> list[str]:
    texts: list[str] = []
    with open(data / "ag_news" / "test.csv", newline="", encoding="utf-8") as fh:
        for row in list(csv.reader(fh))[1:]:
            texts.append(row[1].strip())
            texts += [s.strip() for s in re.split(r"(?<=[.!?])\s+", row[2].replace("\\", " ")) if len(s.strip()) > 20]
    for conv in sorted((data / "locomo").glob("conv-*.json")):
        c = json.loads(conv.read_text())
        for key, turns in c.items():
            if key.startswith("session_") and isinstance(turns, list):
                texts += [f"{t['speaker']}: {t['text']}" for t in turns if t.get("text")]
    return list(dict.fromkeys(texts))


def build(path: Path, data: Path, n: int) -> dict[str, Any]:
    if (path / "memory.duckdb").exists():
        with Memory(path, read_only=True, progress=False) as m:
            if len(m) >= n:
                return {"reused": True, "records": len(m)}
        raise SystemExit(f"{path} holds another memory; remove it or pass another --path")
    texts = corpus(data)
    ec = EmbeddingConfig()
    general, own = Memo(make_embedder(ec.general, ec)), Memo(make_own_embedder(ec.own, ec))
    t0 = time.perf_counter()
    kinds = ("output", "output", "output", "task", "note")
    with Memory(path, general=general, own=own, progress=True) as m:
        for s, start in enumerate(range(0, n, 500)):
            batch = [texts[i % len(texts)] for i in range(start, min(start + 500, n))]
            m.add_many(batch, kind=[kinds[i % 5] for i in range(len(batch))], session=f"s{s + 1}", progress=False)
            if s % 20 == 0:
                print(f"  {start + len(batch)} records, {time.perf_counter() - t0:.0f} s", flush=True)
        m.wait()
        m.rebuild()
    return {"reused": False, "records": n, "distinct_texts": len(texts), "build_s": round(time.perf_counter() - t0, 1)}


def timed(cmd: list[str]) -> tuple[float, str]:
    t = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    took = time.perf_counter() - t
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({res.returncode}): {res.stderr[-500:]}")
    return took, res.stdout


def summary(xs: list[float]) -> dict[str, float]:
    return {"median_s": round(statistics.median(xs), 3), "max_s": round(max(xs), 3), "runs": len(xs)}


def measure(memctl: str, path: Path, runs: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cmds = {"inspect": lambda i: [memctl, "inspect", str(path)],
            "inspect --json": lambda i: [memctl, "inspect", str(path), "--json"],
            "search": lambda i: [memctl, "search", str(path), QUERIES[i % len(QUERIES)], "-k", "10"],
            "topics": lambda i: [memctl, "topics", str(path)]}
    for name, cmd in cmds.items():
        out[name] = summary([timed(cmd(i))[0] for i in range(runs)])
        print(f"  {name}: {out[name]}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--path", default=str(ROOT / "runs" / "bench" / "memctl-100k"))
    ap.add_argument("--out", default=str(ROOT / "docs" / "results" / f"memctl-{date.today().isoformat()}"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--skip-map", action="store_true")
    args = ap.parse_args()
    path, out = Path(args.path), Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    memctl = str(Path(sys.executable).with_name("memctl"))
    result: dict[str, Any] = {"date": date.today().isoformat(), "machine": f"{platform.machine()}, "
                              f"{len(__import__('os').sched_getaffinity(0))} cores, Python {platform.python_version()}",
                              "command": " ".join(["python", *sys.argv])}
    print(f"building {args.n} records in {path}", flush=True)
    result["build"] = build(path, Path(args.data), args.n)
    _, stats_json = timed([memctl, "inspect", str(path), "--json"])
    stats = json.loads(stats_json)
    result["store"] = {"records": stats["records"], "index": stats["index"], "topic_levels": stats["topic_levels"],
                       "graph_edges": sum(stats["graph"].values()), "disk_bytes": stats["disk"]}
    print("idle (no writer):", flush=True)
    result["idle"] = measure(memctl, path, args.runs)
    print("beside a writer adding 20 records a second:", flush=True)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "ready"
        time.sleep(3)
        result["with_writer"] = measure(memctl, path, args.runs)
        _, seen = timed([memctl, "inspect", str(path), "--json"])
        result["with_writer"]["reader_saw_records"] = json.loads(seen)["records"]
        result["with_writer"]["writer_alive"] = writer.poll() is None
    finally:
        writer.kill()
        writer.wait()
    if not args.skip_map:
        html = ROOT / "runs" / "bench" / f"map-{args.n}.html"
        html.parent.mkdir(parents=True, exist_ok=True)
        took, printed = timed([memctl, "map", str(path), "--out", str(html), "--json"])
        info = json.loads(printed)
        result["map"] = {"wall_s": round(took, 1), **info}
        print(f"  map: {result['map']}", flush=True)
    (out / "memctl.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
