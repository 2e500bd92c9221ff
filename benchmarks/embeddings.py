"""Embedding benchmark: LoCoMo retrieval quality of general / own / dual views, and throughput.

Usage::

    python benchmarks/embeddings.py [--data ../shared/data] [--layers 3,6,9,12,15] [--out runs/bench]
                                    [--device auto] [--throughput-only]

Per LoCoMo conversation (one memory, one record per turn), every question is a
query; recall@k is the share of its evidence turns found in the top k, averaged
over the 997 questions. Post-processing (whitening) is fitted per memory on its
own turn vectors only, never on the questions. Embeddings are cached under
``--out`` so post-processing variants can be re-scored without re-running models.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np
from _data import DEFAULT_DATA, load_locomo

from selfmem.retrieval._keywords import KeywordIndex
from selfmem.retrieval._embedders import SentenceTransformerEmbedder, l2_normalize
from selfmem.retrieval._own import CausalLMEmbedder
from selfmem.retrieval._post import Whitener, fuse

KS = (1, 5, 10, 20)


def recall_at(scores: np.ndarray, evidence: list[np.ndarray]) -> dict[int, list[float]]:
    """scores (q, n); evidence: per query the indices of its evidence turns."""
    order = np.argsort(-scores, axis=1)[:, : max(KS)]
    out: dict[int, list[float]] = {k: [] for k in KS}
    for row, ev in zip(order, evidence):
        for k in KS:
            out[k].append(len(set(row[:k].tolist()) & set(ev.tolist())) / len(ev))
    return out


def embed_all(convs, args):
    """Per conversation: general and own-layer vectors of turns and questions (cached)."""
    cache = Path(args.out) / "emb_cache.npz"
    layers = [int(x) for x in args.layers.split(",")]
    key = f"{args.layers}|{args.max_tokens}"
    if cache.is_file():
        z = np.load(cache, allow_pickle=False)
        if str(z["key"]) == key:
            return {k: z[k] for k in z.files if k != "key"}, layers, json.loads(str(z["timing"]))
    gen = SentenceTransformerEmbedder("all-MiniLM-L6-v2", device=args.device, batch_size=64)
    own = CausalLMEmbedder("smollm2", layer=max(layers), device=args.device, batch_size=32,
                           max_tokens=args.max_tokens)
    gen.embed(["warm up"])
    own.embed_layers(["warm up"], layers)
    out: dict[str, np.ndarray] = {}
    t_gen = t_own = 0.0
    n_texts = 0
    for c in convs:
        turns = [t.record_text() for t in c.turns]
        qs = [q.question for q in c.questions]
        for part, texts in (("turns", turns), ("qs", qs)):
            t0 = time.perf_counter()
            out[f"{c.name}/{part}/general"] = gen.embed(texts, progress=True)
            t1 = time.perf_counter()
            for layer, arr in own.embed_layers(texts, layers, progress=True).items():
                out[f"{c.name}/{part}/own{layer}"] = arr
            t2 = time.perf_counter()
            t_gen += t1 - t0
            t_own += t2 - t1
            n_texts += len(texts)
    timing = {"texts": n_texts, "general_s": t_gen, "own_s_all_layers": t_own, "own_top_layer": max(layers)}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    np.savez(cache, key=np.array(key), timing=np.array(json.dumps(timing)), **out)
    return out, layers, timing


def throughput(convs, args) -> dict[str, float]:
    """Texts/s of general, own (default layer) and dual (both) on LoCoMo turns."""
    turns = [t.record_text() for c in convs for t in c.turns]
    texts = (turns * (args.throughput_n // len(turns) + 1))[: args.throughput_n]  # cycled for large n
    gen = SentenceTransformerEmbedder("all-MiniLM-L6-v2", device=args.device, batch_size=args.gen_batch,
                                      dtype=args.dtype)
    own = CausalLMEmbedder("smollm2", layer=args.own_layer, device=args.device, batch_size=args.own_batch,
                           max_tokens=args.max_tokens, dtype=args.dtype)
    gen.embed(texts[:64])
    own.embed(texts[:64])
    res = {}
    t0 = time.perf_counter()
    gen.embed(texts, progress=True)
    t1 = time.perf_counter()
    own.embed(texts, progress=True)
    t2 = time.perf_counter()
    res["general"] = len(texts) / (t1 - t0)
    res["own"] = len(texts) / (t2 - t1)
    res["dual"] = len(texts) / (t2 - t0)
    res["n"] = len(texts)
    return res


LOAD = """
import sys, time
t = time.perf_counter()
from selfmem.retrieval._own import CausalLMEmbedder
e = CausalLMEmbedder("smollm2", layer=int(sys.argv[1]), device=sys.argv[2], dtype=sys.argv[3])
e.embed(["load me"])
print(time.perf_counter() - t)
"""


def load_time(args) -> float:
    """Seconds to import, load (from the dequantized cache) and run the own model once, in a fresh process."""
    import subprocess
    import sys

    cmd = [sys.executable, "-c", LOAD, str(args.own_layer), args.device, args.dtype]
    subprocess.run(cmd, check=True, capture_output=True)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def evaluate(convs, emb, layers, args) -> list[tuple[str, dict[int, float]]]:
    rows: dict[str, dict[int, list[float]]] = {}

    def add(name: str, scores: np.ndarray, evidence) -> None:
        r = recall_at(scores, evidence)
        acc = rows.setdefault(name, {k: [] for k in KS})
        for k in KS:
            acc[k] += r[k]

    alphas = [float(a) for a in args.alphas.split(",")]
    for c in convs:
        index = {t.dia_id: i for i, t in enumerate(c.turns)}
        evidence = [np.array([index[e] for e in q.evidence if e in index]) for q in c.questions]
        bm = KeywordIndex()
        turn_ids = np.arange(len(c.turns))
        bm.add(turn_ids, [t.record_text() for t in c.turns])
        add("BM25", np.stack([bm.scores(q.question, turn_ids)[1] for q in c.questions]), evidence)
        g_t, g_q = emb[f"{c.name}/turns/general"], emb[f"{c.name}/qs/general"]
        add("general (MiniLM, cosine)", g_q @ g_t.T, evidence)
        for layer in layers:
            o_t, o_q = emb[f"{c.name}/turns/own{layer}"], emb[f"{c.name}/qs/own{layer}"]
            add(f"own L{layer} raw", o_q @ o_t.T, evidence)
            for dim in (64, 128, 256):
                for shrink in (0.0, 0.1, 1.0):
                    w = Whitener(dim, shrinkage=shrink).fit(o_t)
                    wt, wq = w.transform(o_t), w.transform(o_q)
                    add(f"own L{layer} whiten{dim} s{shrink}", wq @ wt.T, evidence)
                    if dim == args.own_dim:
                        for a in alphas:
                            add(f"dual L{layer} whiten{dim} s{shrink} a={a}", fuse(g_q, wq, a) @ fuse(g_t, wt, a).T,
                                evidence)
            centred = l2_normalize(o_t - o_t.mean(0)), l2_normalize(o_q - o_t.mean(0))
            add(f"own L{layer} centred", centred[1] @ centred[0].T, evidence)
    return [(name, {k: float(np.mean(v)) for k, v in acc.items()}) for name, acc in rows.items()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--layers", default="3,6,9,12,15")
    ap.add_argument("--alphas", default="0.4,0.5,0.6,0.7,0.8")
    ap.add_argument("--own-dim", type=int, default=128)
    ap.add_argument("--own-layer", type=int, default=6, help="layer for the throughput run")
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default="auto", help="model precision for the throughput run (auto, float32, bfloat16)")
    ap.add_argument("--gen-batch", type=int, default=64)
    ap.add_argument("--own-batch", type=int, default=32)
    ap.add_argument("--throughput-n", type=int, default=2760, help="texts (LoCoMo turns, cycled)")
    ap.add_argument("--throughput-only", action="store_true")
    ap.add_argument("--out", default="runs/bench")
    args = ap.parse_args()

    convs = load_locomo(args.data)
    machine = f"{platform.node()} {platform.machine()} ({args.device}, dtype {args.dtype})"
    print(f"# embeddings benchmark {date.today()} on {machine}")
    tp = throughput(convs, args)
    print(f"\nthroughput on {tp['n']} LoCoMo turns (texts/s): general {tp['general']:.1f}, "
          f"own L{args.own_layer} {tp['own']:.1f}, dual {tp['dual']:.1f}")
    print(f"second load of the own model (fresh process, cached safetensors, incl. imports): {load_time(args):.2f} s")
    if args.throughput_only:
        return
    emb, layers, timing = embed_all(convs, args)
    rows = evaluate(convs, emb, layers, args)
    n_q = sum(len(c.questions) for c in convs)
    print(f"\nLoCoMo recall over {n_q} questions, {len(convs)} conversations\n")
    print("| representation | R@1 | R@5 | R@10 | R@20 |\n|---|---|---|---|---|")
    for name, r in sorted(rows, key=lambda x: -x[1][10]):
        print(f"| {name} | {r[1]:.3f} | {r[5]:.3f} | {r[10]:.3f} | {r[20]:.3f} |")


if __name__ == "__main__":
    main()
