"""Knowledge-graph benchmark: LoCoMo recall with graph expansion per edge type, graph upkeep, walk latency.

Usage::

    python benchmarks/graph.py [--data ../shared/data] [--out runs/graph] [--parts expansion,upkeep,latency]
                               [--upkeep-n 10000] [--upkeep-general hash:256|all-MiniLM-L6-v2] [--latency-n 100000]

expansion: one memory per LoCoMo conversation (default config: MiniLM + SmolLM2), one record per turn,
each LoCoMo session a memory session (so FOLLOWS links neighbouring turns). Every question is searched
with k = 10 without expansion and with each expandable edge type and ``expand_hits`` setting, in the same
run; recall@10 counts evidence turns among the 10 results (expanded ones included: the list stays at 10).
The default is chosen by leave-one-conversation-out: for each conversation, the setting with the best mean
recall on the other four is scored on it; the held-out mean is the headline.

upkeep: ``add_many`` of n texts (AG News, batches of 1,000) into an empty memory with the graph on and
off, same texts, same process; the share the graph adds is reported.

latency: a memory of n records (AG News and LoCoMo texts, repeated with a suffix; hash:256 general
embedder, so the 100k build takes minutes; sessions of 50 records, a task id on every 10th) and
``neighbours(depth=1)`` / ``path(max_depth=4)`` between random memories, one call at a time. Topics are
fitted once at 50 records during the build, so every later memory joins few topics (hubs);
``--latency-rebuild`` also times ``Memory.rebuild()`` and measures again on its full topic tree.
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
from _data import DEFAULT_DATA, load_ag_news, load_locomo
from tqdm import tqdm

from selfmem import EmbeddingConfig, GraphConfig, Memory, MemoryConfig

SETTINGS: list[tuple[str, tuple[str, ...], int]] = [("no expansion", (), 1)]
for _rel in ("FOLLOWS", "SIMILAR_TO"):
    for _hits in (1, 2, 3, 5):
        SETTINGS.append((f"{_rel}, {_hits} hit(s) expanded", (_rel,), _hits))
SETTINGS.append(("FOLLOWS + SIMILAR_TO, 2 hits", ("FOLLOWS", "SIMILAR_TO"), 2))
SETTINGS.append(("DERIVED_FROM + SOLVES, 3 hits", ("DERIVED_FROM", "SOLVES"), 3))


def expansion(args) -> dict:
    convs = load_locomo(args.data)
    per: dict[str, dict[str, float]] = {name: {} for name, _, _ in SETTINGS}
    edges: dict[str, dict[str, int]] = {}
    for c in tqdm(convs, desc="conversations"):
        path = Path(args.out) / "expansion" / c.name
        shutil.rmtree(path, ignore_errors=True)
        with Memory(path, MemoryConfig(), progress=False) as mem:
            for s in sorted({t.session for t in c.turns}):
                turns = [t for t in c.turns if t.session == s]
                mem.add_many([t.record_text() for t in turns], kind="message", session=f"session_{s}",
                             metadata=[{"dia_id": t.dia_id} for t in turns])
            mem.wait()
            edges[c.name] = dict(mem.stats().graph)
        for name, rels, hits in SETTINGS:
            cfg = MemoryConfig().replace(graph=GraphConfig(expand=rels, expand_hits=hits))
            with Memory(path, cfg, progress=False) as mem:
                recall = []
                for q in c.questions:
                    got = [h.record.metadata["dia_id"] for h in mem.search(q.question, k=10)]
                    recall.append(len(set(got) & q.evidence) / len(q.evidence))
            per[name][c.name] = float(np.mean(recall))
    names = [c.name for c in convs]
    held = {}
    for c in names:
        train = [n for n in names if n != c]
        best = max(SETTINGS, key=lambda s: (np.mean([per[s[0]][n] for n in train]), -len(s[1])))[0]
        held[c] = (best, per[best][c])
    return {"per_conversation": per, "held_out": held, "edges": edges,
            "questions": {c.name: len(c.questions) for c in convs}}


def _texts(args, n: int) -> list[str]:
    news, _ = load_ag_news(args.data)
    base = news + [t.record_text() for c in load_locomo(args.data) for t in c.turns]
    return [base[i % len(base)] + ("" if i < len(base) else f" (copy {i // len(base)})") for i in range(n)]


def upkeep(args) -> dict:
    texts = _texts(args, args.upkeep_n)
    emb = EmbeddingConfig(general=args.upkeep_general, own=None, mode="general") if args.upkeep_general.startswith(
        "hash") else EmbeddingConfig()
    out = {}
    for graph in (False, True, False, True):  # twice each, interleaved; the faster of each pair counts
        path = Path(args.out) / "upkeep" / f"graph-{graph}"
        shutil.rmtree(path, ignore_errors=True)
        cfg = MemoryConfig(embedding=emb, graph=GraphConfig(enabled=graph))
        with Memory(path, cfg, progress=False) as mem:
            t = time.perf_counter()
            for lo in range(0, len(texts), 1000):
                mem.add_many(texts[lo:lo + 1000], kind="note", session=f"s{lo // 5000}",
                             metadata=[{"task_id": f"t{(lo + i) // 10}"} for i in range(len(texts[lo:lo + 1000]))])
            took = time.perf_counter() - t
            edges = dict(mem.stats().graph)
        key = "with graph" if graph else "without graph"
        out[key] = min(out.get(key, np.inf), took)
        out[f"edges {key}"] = edges
    out["overhead"] = out["with graph"] / out["without graph"] - 1
    return out


def latency(args) -> dict:
    n = args.latency_n
    texts = _texts(args, n)
    path = Path(args.out) / "latency"
    shutil.rmtree(path, ignore_errors=True)
    cfg = MemoryConfig(embedding=EmbeddingConfig(general="hash:256", own=None, mode="general"), background=False)
    t = time.perf_counter()
    with Memory(path, cfg, progress=False) as mem:
        for lo in tqdm(range(0, n, 10_000), desc=f"building {n:,}"):
            chunk = texts[lo:lo + 10_000]
            sessions = [f"s{(lo + i) // 50}" for i in range(len(chunk))]
            for sess in dict.fromkeys(sessions):
                rows = [i for i, x in enumerate(sessions) if x == sess]
                mem.add_many([chunk[i] for i in rows], kind="note", session=sess, progress=False,
                             metadata=[{"task_id": f"t{(lo + i) // 10}"} if (lo + i) % 10 == 0 else {} for i in rows])
        build = time.perf_counter() - t
        mem.wait()
        out = {"n": n, "build_s": build, "as built": _walks(mem)}
        if args.latency_rebuild:  # a full topic tree (the build fitted topics once, at 50 records) and all edges anew
            t = time.perf_counter()
            mem.rebuild()
            out["rebuild_s"] = time.perf_counter() - t
            out["after rebuild"] = _walks(mem)
    return out


def _walks(mem: Memory) -> dict:
    stats = mem.stats()
    rng = np.random.default_rng(0)
    ids = rng.integers(1, len(mem) + 1, 400)
    nb, pt, found, lengths = [], [], 0, []
    for i in ids[:200]:
        t = time.perf_counter()
        mem.neighbours(int(i), depth=1)
        nb.append(time.perf_counter() - t)
    for a, b in zip(ids[200:300], ids[300:400]):
        t = time.perf_counter()
        p = mem.path(int(a), int(b), max_depth=4)
        pt.append(time.perf_counter() - t)
        if p is not None:
            found += 1
            lengths.append(len(p.edges))
    return {"edges": dict(stats.graph), "topics": len(mem.topics()),
            "neighbours_ms": {"p50": 1e3 * float(np.median(nb)), "p95": 1e3 * float(np.percentile(nb, 95))},
            "path_ms": {"p50": 1e3 * float(np.median(pt)), "p95": 1e3 * float(np.percentile(pt, 95))},
            "paths_found": found, "mean_path_edges": float(np.mean(lengths)) if lengths else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--out", default="runs/graph")
    ap.add_argument("--parts", default="expansion,upkeep,latency")
    ap.add_argument("--upkeep-n", type=int, default=10_000)
    ap.add_argument("--upkeep-general", default="all-MiniLM-L6-v2",
                    help="all-MiniLM-L6-v2 (the default config's models) or hash:DIM (graph cost alone)")
    ap.add_argument("--latency-n", type=int, default=100_000)
    ap.add_argument("--latency-rebuild", action="store_true",
                    help="also time Memory.rebuild() at n and measure the walks again on its full topic tree")
    args = ap.parse_args()
    results: dict = {"machine": f"{platform.processor() or platform.machine()}, {__import__('os').cpu_count()} cores",
                     "date": str(date.today()), "command": "python benchmarks/graph.py " + " ".join(
                         f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "data")}
    for part in args.parts.split(","):
        t = time.perf_counter()
        results[part] = {"expansion": expansion, "upkeep": upkeep, "latency": latency}[part](args)
        results[part]["seconds"] = time.perf_counter() - t
        print(json.dumps({part: results[part]}, indent=1, default=str), flush=True)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / f"graph-{'-'.join(args.parts.split(','))}.json").write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
