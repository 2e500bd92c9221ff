"""Add latency with the refits on: grow a memory one ``add`` at a time and time every call.

Usage::

    python benchmarks/add_latency.py [--n 100000] [--data ../shared/data] [--out runs/bench] [--inline]
                                     [--no-entities] [--no-sentences]

The memory uses the hash embedders (general 64 dims + own 48 dims, dual mode) so that the numbers
measure the library, not the models. Along the way every refit happens: the own-view whitening at
200 records (index rebuilt in the new space), the first topics at 50, the switch from the flat index
to IVF-PQ at 50,000 (``IndexConfig.ivf_threshold``). By default they run in the background
(``MemoryConfig(background=True)``); ``--inline`` runs them inside the add that makes them due, for
comparison. Texts are the 7,600 AG News items, repeated with a numbered suffix.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import time
from datetime import date
from pathlib import Path

import numpy as np
from _data import DEFAULT_DATA, load_ag_news
from tqdm import tqdm

from selfmem import EmbeddingConfig, GraphConfig, Memory, MemoryConfig


def run(args: argparse.Namespace) -> dict:
    texts = load_ag_news(args.data)[0]
    path = Path(args.out) / f"add-latency-{'inline' if args.inline else 'background'}"
    shutil.rmtree(path, ignore_errors=True)
    cfg = MemoryConfig(embedding=EmbeddingConfig(general="hash:64", own="hash:48", mode="dual", own_dim=32,
                                                 sentences=not args.no_sentences),
                       background=not args.inline, graph=GraphConfig(entities=not args.no_entities))
    from selfmem.store import DuckDBStore as Store

    checkpoints: list[tuple[float, float]] = []
    plain = Store.checkpoint

    def timed(self, *a, **kw):  # records when the store checkpoints, to explain slow adds
        t0 = time.perf_counter()
        try:
            return plain(self, *a, **kw)
        finally:
            checkpoints.append((t0, time.perf_counter()))

    Store.checkpoint = timed
    lat = np.zeros(args.n)
    starts = np.zeros(args.n)
    events: list[tuple[int, str]] = []
    t_all = time.perf_counter()
    with Memory(path, cfg, progress=False) as mem:
        kind, fitted = "flat", False
        for i in tqdm(range(args.n), desc="adds", mininterval=2.0):
            text = f"{texts[i % len(texts)]} (copy {i // len(texts)})"
            t = time.perf_counter()
            mem.add(text, kind="note")
            lat[i] = time.perf_counter() - t
            starts[i] = t
            now_kind, now_fitted = mem._state.vectors.index.kind, mem._state.topics.state.fitted
            if now_kind != kind or now_fitted != fitted:
                events.append((i + 1, f"index {now_kind}, topics {'fitted' if now_fitted else 'not fitted'}"))
                kind, fitted = now_kind, now_fitted
        t_close = time.perf_counter()
    total = time.perf_counter() - t_all
    ms = lat * 1e3
    slow = np.argsort(-ms)[:5]
    return {
        "date": str(date.today()), "machine": f"{platform.node()} {platform.machine()}",
        "mode": "inline" if args.inline else "background", "n": args.n,
        "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
        "p999_ms": float(np.percentile(ms, 99.9)), "max_ms": float(ms.max()),
        "slowest": [(int(i) + 1, float(ms[i])) for i in slow], "events": events,
        "total_s": total, "close_s": time.perf_counter() - t_close,
        "checkpoints_during_adds": [(round(b - a, 3)) for a, b in checkpoints if a < t_close],
        "slow_adds_overlapping_a_checkpoint": [int(i) + 1 for i in slow if any(
            a < starts[i] + lat[i] and starts[i] < b for a, b in checkpoints)],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--out", default="runs/bench")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--inline", action="store_true", help="refit inside the add that makes a refit due")
    ap.add_argument("--no-entities", action="store_true", help="without the graph's entity layer (MENTIONS edges)")
    ap.add_argument("--no-sentences", action="store_true", help="without sentence vectors (embedding.sentences)")
    args = ap.parse_args()
    res = run(args)
    out = Path(args.out) / f"add_latency_{res['mode']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    print(f"# add latency {res['date']} on {res['machine']} ({res['mode']} refits)")
    print("| refits | adds | p50 ms | p99 ms | p99.9 ms | max ms | total s |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {res['mode']} | {res['n']:,} | {res['p50_ms']:.2f} | {res['p99_ms']:.2f} | {res['p999_ms']:.2f} | "
          f"{res['max_ms']:.1f} | {res['total_s']:.0f} |")
    print("slowest adds (add number, ms):", ", ".join(f"#{i} {m:.0f}" for i, m in res["slowest"]))
    print("events:", "; ".join(f"after add {i}: {e}" for i, e in res["events"]))
    print(f"checkpoints during the adds (s): {res['checkpoints_during_adds']}; slow adds overlapping one: "
          f"{res['slow_adds_overlapping_a_checkpoint']}; close() took {res['close_s']:.1f} s")


if __name__ == "__main__":
    main()
