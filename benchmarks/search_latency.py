"""Search latency broken down by stage, at several memory sizes, every search mode.

Usage::

    python benchmarks/search_latency.py [--data ../shared/data] [--out runs/search-latency]
                                        [--sizes 100000,300000] [--queries 200] [--embedder hash|real]
                                        [--modes hybrid,dense,keyword,topics] [--chunk 5000] [--cores 0] [--no-rebuild]
                                        [--entity-weight 0] [--feedback N] [--replies on|off]
                                        [--length-weight W]

A memory of N records is filled through ``Memory.add_many`` (sessions of 5,000, so FOLLOWS edges exist for
the default expansion) with the real texts of LoCoMo then AG News, repeated with a variant suffix until N
is reached; with ``--embedder hash`` both views are the deterministic hash embedder (no model time:
what is left is the library's own cost), with ``--embedder real`` the default models. The memory is
kept under ``--out`` and reused by later runs of the same size and embedder.

Each LoCoMo question is searched once per mode (k = 10, one at a time, after 20 warm-up searches, the
query cache cleared so every query is embedded). The stages (``selfmem._timing``): ``embed`` (query
embedding and its index vector), ``index`` (FAISS search and the candidates' vectors), ``keyword`` (BM25),
``store`` (records read), ``fusion`` (ranking), ``topics`` (each hit's topic), ``graph`` (expansion),
``filter``; ``other`` is the rest. Prints p50/p95 per mode and the mean per stage; writes
``search-latency.json`` under ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _data import DEFAULT_DATA, load_ag_news, load_locomo  # noqa: E402

from selfmem import EmbeddingConfig, GraphConfig, Memory, MemoryConfig  # noqa: E402
from selfmem._progress import bar  # noqa: E402
from selfmem._timing import collect_stages  # noqa: E402

STAGES = ("embed", "index", "keyword", "store", "fusion", "topics", "graph", "filter")


def config(embedder: str) -> MemoryConfig:
    """The default config (hash views for ``"hash"``), no growth refits, no SIMILAR_TO edges (their build at 1M
    is 1M index searches, and the default search does not follow them)."""
    emb = MemoryConfig().embedding
    if embedder == "hash":
        emb = EmbeddingConfig(general="hash:384", own="hash:576")
    return MemoryConfig(embedding=dataclasses.replace(emb, own_refit_growth=0), graph=GraphConfig(similar_k=0))


def texts_for(n: int, data: str) -> list[str]:
    base = [t.record_text() for c in load_locomo(data) for t in c.turns] + load_ag_news(data)[0]
    return [base[i % len(base)] + ("" if i < len(base) else f" (variant {i // len(base)})") for i in range(n)]


def build(n: int, args: argparse.Namespace) -> Path:
    """The memory of n records under --out (reused when complete), filled ``--chunk`` texts per session."""
    path = Path(args.out) / f"{args.embedder}-{n}"
    cfg = config(args.embedder)
    done = path / "complete"
    if done.is_file():
        return path
    texts = texts_for(n, args.data)
    chunk = args.chunk
    t0 = time.perf_counter()
    with Memory(path, cfg, progress=False) as mem:
        start = len(mem)
        for lo in bar(range(start, n, chunk), enabled=True, desc=f"filling {n:,}"):
            mem.add_many(texts[lo:lo + chunk], kind="message", session=f"s{lo // chunk}", progress=False)
        if args.rebuild:
            mem.rebuild()
        mem.wait()
    done.write_text(json.dumps({"records": n, "fill_s": time.perf_counter() - t0}))
    return path


def pin_cores(n: int) -> None:
    """Run this process on its first ``n`` CPUs (0: all), the thread pools of numpy, torch and FAISS at ``n``:
    a machine with more cores measures as the project's 2-core machine would (the same code paths)."""
    if n <= 0:
        return
    import faiss
    import torch
    from threadpoolctl import threadpool_limits

    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:n])
    threadpool_limits(n)
    torch.set_num_threads(n)
    faiss.omp_set_num_threads(n)


def measure(path: Path, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    queries = [q.question for c in load_locomo(args.data) for q in c.questions][: args.queries]
    cfg = config(args.embedder)
    if args.entity_weight:
        cfg = cfg.replace(search=dataclasses.replace(cfg.search, entity_weight=args.entity_weight))
    if args.length_weight is not None:
        cfg = cfg.replace(search=dataclasses.replace(cfg.search, length_weight=args.length_weight))
    if args.sentence_weight is not None:
        cfg = cfg.replace(search=dataclasses.replace(cfg.search, sentence_weight=args.sentence_weight))
    if args.feedback is not None or args.replies is not None:
        cfg = cfg.replace(search=dataclasses.replace(
            cfg.search, feedback=cfg.search.feedback if args.feedback is None else args.feedback,
            replies=cfg.search.replies if args.replies is None else args.replies == "on"))
    with Memory(path, cfg, progress=False) as mem:
        mem.wait()
        pin_cores(args.cores)
        return measure_memory(mem, queries, args.modes.split(","))


def measure_memory(mem: Memory, queries: list[str], modes: list[str]) -> dict[str, dict[str, float]]:
    """p50, p95, mean and the mean per stage (ms) of one search per query in each mode, on an open memory."""
    from selfmem.retrieval import _views

    out: dict[str, dict[str, float]] = {}
    for mode in modes:
        for i in range(20):
            mem.search(f"warm-up query number {i}", k=10, mode=mode)
        _views._QUERY_CACHE.clear()
        lat, spent = [], {s: 0.0 for s in STAGES}
        for q in queries:
            with collect_stages() as got:
                t = time.perf_counter()
                mem.search(q, k=10, mode=mode)
                lat.append(time.perf_counter() - t)
            for s, sec in got.items():
                spent[s] = spent.get(s, 0.0) + sec
        ms = np.array(lat) * 1e3
        row = {"p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)),
               "mean": float(ms.mean())}
        row.update({s: spent[s] / len(lat) * 1e3 for s in STAGES})
        row["other"] = row["mean"] - sum(row[s] for s in STAGES)
        out[mode] = row
        print(f"  {mode:8s} p50 {row['p50']:.1f} ms  p95 {row['p95']:.1f} ms  " +
              " ".join(f"{s} {row[s]:.2f}" for s in (*STAGES, "other")), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--out", default="runs/search-latency")
    ap.add_argument("--sizes", default="100000,300000")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--embedder", choices=("hash", "real"), default="hash")
    ap.add_argument("--modes", default="hybrid,dense,keyword,topics")
    ap.add_argument("--tag", default="", help="a name for this run in the JSON (e.g. the commit)")
    ap.add_argument("--chunk", type=int, default=5000, help="texts per add_many call (one session each)")
    ap.add_argument("--no-rebuild", dest="rebuild", action="store_false",
                    help="skip the rebuild after the fill (the index as the adds left it; a 1M rebuild needs more than 24 GB)")
    ap.add_argument("--entity-weight", type=float, default=0.0,
                    help="search with the entity walk at this weight (SearchConfig.entity_weight; 0: off)")
    ap.add_argument("--feedback", type=int, default=None,
                    help="search with this many feedback hits (SearchConfig.feedback; default: the config's)")
    ap.add_argument("--length-weight", type=float, default=None,
                    help="weight of the texts' length (SearchConfig.length_weight; default: the config's)")
    ap.add_argument("--sentence-weight", type=float, default=None,
                    help="places a hit moves per SD of its best sentence match (SearchConfig.sentence_weight; "
                         "default: the config's); a memory filled before sentence vectors were kept has none: "
                         "fill it again or rebuild it")
    ap.add_argument("--replies", choices=("on", "off"), default=None,
                    help="lift the answers of question hits (SearchConfig.replies; default: the config's)")
    ap.add_argument("--cores", type=int, default=0,
                    help="measure on this many CPUs only (0: all; the fill uses all): e.g. 2 on a larger machine")
    args = ap.parse_args()
    print(f"# search latency {date.today()} on {platform.node()} {platform.processor() or platform.machine()}",
          flush=True)
    results = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "embedder": args.embedder,
               "tag": args.tag, "queries": args.queries, "cores": args.cores or os.cpu_count(),
               "chunk": args.chunk, "rebuild": args.rebuild, "sizes": {}}
    for n in (int(s) for s in args.sizes.split(",")):
        path = build(n, args)
        print(f"{n:,} records ({args.embedder}):", flush=True)
        results["sizes"][str(n)] = measure(path, args)
    out = Path(args.out) / f"search-latency-{args.embedder}{'-' + args.tag if args.tag else ''}.json"
    out.write_text(json.dumps(results, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
