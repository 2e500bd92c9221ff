"""CPU without bfloat16 (issue 28): eager PyTorch float32 against the ONNX Runtime query path, both models.

Usage::

    SELFMEM_CPU_BF16=0 taskset -c 1 python benchmarks/cpu_fastpath.py [--data ../shared/data] [--queries 300]
                                                                     [--bulk 1500] [--threads 1] [--recall torch-fp32,onnx]

Measures, for the general model (all-MiniLM-L6-v2) and the own model (SmolLM2-135M, layer
``EmbeddingConfig.own_layer``), each in PyTorch float32 (``runtime="torch", dtype="float32"``: what a CPU
without bf16 ran before issue 28), with ``runtime="onnx"`` (what ``"auto"`` picks there: ONNX Runtime float32
for calls of <= 8 texts, PyTorch float32 for bulk calls) and with ``runtime="onnx-w8"`` (the own model's
queries on 8-bit weights), and PyTorch bfloat16 (``runtime="torch", dtype="bfloat16"``: what ``"auto"`` runs
bulk calls in on a CPU with bf16 instructions; slow where the CPU lacks them):

- query latency: one LoCoMo question at a time through ``embed([q])`` of both models (what
  ``Memory.search`` pays for a query not in its cache), p50 and p95 in ms, after 20 warm-up queries; the
  runtimes take turns query by query (and chunk by chunk below), so a neighbour's load falls on both alike;
- bulk throughput: ``embed`` of the first ``--bulk`` LoCoMo turns in chunks of 250, both models, texts/s;
- vectors: cosine of each vector to its float32 PyTorch vector (turns in bulk, questions one by one),
  min and mean;
- quality: LoCoMo recall@10 through ``Memory`` (default config: dual view, hybrid search), one memory per
  conversation, one record per turn, every question searched, once per runtime in ``--recall``; with the median time of
  those ``Memory.search`` calls (query embedding included; the runtimes run one after the other here).
  An entry ``FILL>QUERY`` (``torch-bf16>onnx``: what ``"auto"`` does on a bf16 CPU) fills each memory with one
  runtime and reopens it with the other for the questions; ``--recall-only`` measures only these.

``--threads`` sets torch's intra-op threads (ONNX Runtime uses one thread for <= 8 texts, as the
embedders do; pin the process with ``taskset``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import shutil
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
from _data import DEFAULT_DATA, load_locomo

from selfmem import Memory, MemoryConfig
from selfmem.retrieval._embedders import SentenceTransformerEmbedder, fast_bf16_cpu
from selfmem.retrieval._own import CausalLMEmbedder

RUNTIMES = {"torch-fp32": {"runtime": "torch", "dtype": "float32", "device": "cpu"},
            "torch-bf16": {"runtime": "torch", "dtype": "bfloat16", "device": "cpu"},
            "onnx": {"runtime": "onnx", "device": "cpu"},
            "onnx-w8": {"runtime": "onnx-w8", "device": "cpu"}}


def embedders(kw: dict, layer: int) -> tuple[SentenceTransformerEmbedder, CausalLMEmbedder]:
    gen = SentenceTransformerEmbedder("all-MiniLM-L6-v2", **kw)
    own = CausalLMEmbedder("smollm2", layer=layer, **kw)
    gen.embed(["warm up"])
    own.embed(["warm up"])
    return gen, own


def query_latency(models: dict[str, tuple], queries: list[str]) -> dict[str, dict[str, float]]:
    """Per runtime: p50/p95 ms of both models' ``embed([q])``; the runtimes take turns query by query, so
    a neighbour's load falls on both alike."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in models}
    for i, q in enumerate(queries[:20] + queries):
        for name, (gen, own) in models.items():
            t0 = time.perf_counter()
            gen.embed([q])
            t1 = time.perf_counter()
            own.embed([q])
            t2 = time.perf_counter()
            if i >= 20:
                times[name].append((t1 - t0, t2 - t1))
    out = {}
    for name, ts in times.items():
        tg, to = np.array(ts).T * 1e3
        out[name] = {"p50": float(np.percentile(tg + to, 50)), "p95": float(np.percentile(tg + to, 95)),
                     "general p50": float(np.median(tg)), "own p50": float(np.median(to))}
    return out


def bulk(models: dict[str, tuple], texts: list[str], chunk: int = 250) -> tuple[dict[str, dict[str, float]],
                                                                             dict[str, dict[str, np.ndarray]]]:
    """Per runtime: texts/s of ``embed`` on ``texts`` (chunks of ``chunk``, runtimes taking turns), and the vectors."""
    secs = {name: [0.0, 0.0] for name in models}
    vecs: dict[str, dict[str, list[np.ndarray]]] = {name: {"general": [], "own": []} for name in models}
    for s in range(0, len(texts), chunk):
        part = texts[s:s + chunk]
        for name, (gen, own) in models.items():
            t0 = time.perf_counter()
            vecs[name]["general"].append(gen.embed(part))
            t1 = time.perf_counter()
            vecs[name]["own"].append(own.embed(part))
            t2 = time.perf_counter()
            secs[name][0] += t1 - t0
            secs[name][1] += t2 - t1
    n = len(texts)
    return ({name: {"dual texts/s": n / (g + o), "general texts/s": n / g, "own texts/s": n / o}
             for name, (g, o) in secs.items()},
            {name: {role: np.concatenate(v) for role, v in d.items()} for name, d in vecs.items()})


def recall_at_10(convs, embedding: dict, root: Path, query: dict | None = None) -> tuple[float, float]:
    """Mean recall@10 over every LoCoMo question, default config with ``embedding`` fields replaced, and the
    median ``Memory.search`` time in ms (query embedding included; not interleaved with the other runtime).

    With ``query``, each memory is filled with ``embedding``, closed, and reopened with ``query`` for the
    searches: the vectors of the memory and of the questions come from different runtimes."""
    base = MemoryConfig()
    cfg = base.replace(embedding=dataclasses.replace(base.embedding, **embedding))
    qcfg = cfg if query is None else base.replace(embedding=dataclasses.replace(base.embedding, **query))
    scores, lat = [], []
    for c in convs:
        path = root / c.name
        shutil.rmtree(path, ignore_errors=True)
        with Memory(path, cfg, progress=False) as mem:
            ids = mem.add_many([t.record_text() for t in c.turns], kind="message",
                               metadata=[{"dia_id": t.dia_id} for t in c.turns])
            mem.wait()
        dia = dict(zip(ids, (t.dia_id for t in c.turns)))
        with Memory(path, qcfg, progress=False) as mem:
            for q in c.questions:
                t0 = time.perf_counter()
                hits = mem.search(q.question, k=10)
                lat.append(time.perf_counter() - t0)
                got = [dia[h.record.id] for h in hits]
                scores.append(len(set(got) & q.evidence) / len(q.evidence))
        shutil.rmtree(path, ignore_errors=True)
    return float(np.mean(scores)), float(np.median(lat) * 1e3)


def recall(args: argparse.Namespace, convs, res: dict[str, dict]) -> None:
    """``recall_at_10`` for each entry of ``--recall`` (a runtime, or ``FILL>QUERY``), into ``res``."""
    if not args.recall:
        return
    root = Path(tempfile.mkdtemp(prefix="cpu-fastpath-", dir=args.out if Path(args.out).is_dir() else None))
    for name in args.recall.split(","):
        fill, _, query = name.partition(">")
        kw = [{k: v for k, v in RUNTIMES[n].items() if k != "device"} for n in (fill, query or fill)]
        r = res.setdefault(name, {})
        r["recall@10"], r["search p50"] = recall_at_10(convs, kw[0], root, kw[1] if query else None)
        print(name, "recall@10", r["recall@10"], "search p50 ms", r["search p50"], flush=True)
    shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--bulk", type=int, default=1500)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--recall", default="torch-fp32,onnx", help="runtimes whose LoCoMo recall@10 is measured "
                    "(comma-separated; empty: none); FILL>QUERY fills each memory with one runtime and "
                    "searches it with another, e.g. torch-bf16>onnx")
    ap.add_argument("--recall-only", action="store_true", help="measure only --recall (no latency, bulk or "
                    "vector comparison)")
    ap.add_argument("--out", default="runs/bench")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    layer = MemoryConfig().embedding.own_layer
    print(f"# cpu_fastpath {date.today()} on {platform.node()}; bf16 CPU path: {fast_bf16_cpu()} "
          f"(SELFMEM_CPU_BF16), torch threads {torch.get_num_threads()}, own layer {layer}")
    convs = load_locomo(args.data)
    queries = [q.question for c in convs for q in c.questions][: args.queries]
    turns = [t.record_text() for c in convs for t in c.turns][: args.bulk]
    res: dict[str, dict] = {}
    if args.recall_only:
        recall(args, convs, res)
        print(json.dumps(res, indent=1))
        return
    models = {}
    for name, kw in RUNTIMES.items():
        t0 = time.perf_counter()
        models[name] = embedders(kw, layer)
        res[name] = {"load s": time.perf_counter() - t0, "fingerprints": [m.fingerprint() for m in models[name]]}
    for name, r in query_latency(models, queries).items():
        res[name] |= r
    speed, vecs = bulk(models, turns)
    for name, (gen, own) in models.items():
        res[name] |= speed[name]
        vecs[name] |= {"q-general": np.concatenate([gen.embed([q]) for q in queries]),
                       "q-own": np.concatenate([own.embed([q]) for q in queries])}
        print(name, json.dumps(res[name]), flush=True)
    cos = {}
    for name in ("onnx", "onnx-w8", "torch-bf16"):
        for role in ("general", "own"):
            for part, key in (("bulk", role), ("query", f"q-{role}")):
                c = (vecs[name][key] * vecs["torch-fp32"][key]).sum(1)
                cos[f"{name}: {role} {part}"] = {"min": float(c.min()), "mean": float(c.mean())}
    print("cosine vs torch float32:", json.dumps(cos))
    recall(args, convs, res)
    t = res["torch-fp32"]
    print("\n| runtime | query p50 ms (both models) | p95 ms | general p50 | own p50 | bulk dual texts/s | "
          "general texts/s | own texts/s | recall@10 | search p50 ms |\n|---|---|---|---|---|---|---|---|---|---|")
    for name, r in res.items():
        if "p50" not in r:
            continue
        print(f"| {name} | {r['p50']:.1f} | {r['p95']:.1f} | {r['general p50']:.1f} | {r['own p50']:.1f} | "
              f"{r['dual texts/s']:.1f} | {r['general texts/s']:.1f} | {r['own texts/s']:.1f} | "
              f"{r.get('recall@10', float('nan')):.4f} | {r.get('search p50', float('nan')):.1f} |")
    for name in ("onnx", "onnx-w8", "torch-bf16"):
        o = res[name]
        print(f"\n{name}: query speed-up {t['p50'] / o['p50']:.2f}x, bulk speed-up "
              f"{o['dual texts/s'] / t['dual texts/s']:.2f}x")
    print("\n| vectors (against PyTorch float32) | cosine min | mean |\n|---|---|---|")
    for name, c in cos.items():
        print(f"| {name} | {c['min']:.6f} | {c['mean']:.6f} |")


if __name__ == "__main__":
    main()
