"""Topic benchmark: AG News label recovery, coherence and diversity, rebuild and online-assignment time.

Usage::

    python benchmarks/topics.py [--data ../shared/data] [--out runs/bench] [--sizes 100000,1000000]
                                [--skip-quality] [--skip-timing]

Quality: AG News (7,600 items, 4 labels) goes into a Memory through the real API (default dual
embeddings, and a general-only memory); ``Memory.rebuild()`` fits the topics. For every tree level we
report the number of topics and ARI / NMI of the memories' topic at that level against the labels.
Baselines on the same MiniLM vectors in the same run: KMeans given k = 4, and a BERTopic-style
pipeline (UMAP to 5 dims, cosine, 15 neighbours + HDBSCAN, min cluster size 15; 5 UMAP seeds) whose
outliers count as their own cluster for ARI/NMI. Then the same fit on the same vectors with other
seeds and with the diagonal covariances of the first version, at the level closest to 4 topics.
Coherence: mean NPMI of each topic's top-10 keywords over the corpus documents (pairs that never
co-occur score -1); diversity: unique top-10 words / all top-10 words. The same for the LoCoMo turns.

Timing: ``TopicState.fit`` (reduction + DP mixture + tree + labels) at 10k on real dual vectors
(AG News + LoCoMo turns, taken from the memories above, or from benchmarks/retrieval.py's base
memory) and on synthetic clustered vectors with synthetic texts at the larger sizes; online
Chinese-restaurant assignment per memory.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import time
from collections import Counter
from datetime import date
from itertools import combinations
from pathlib import Path

import numpy as np
from _data import DEFAULT_DATA, load_ag_news, load_locomo
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from selfmem import EmbeddingConfig, Memory, MemoryConfig
from selfmem.clustering._topics import TopicState
from selfmem._config import TopicsConfig
from selfmem.memory._parts import index_vectors
from selfmem.retrieval._bm25 import tokenize


def memory_for(name: str, texts: list[str], cfg: MemoryConfig, args) -> Path:
    path = Path(args.out) / f"topics-{name}"
    if (path / "memory.duckdb").is_file():
        with Memory(path, progress=False) as mem:
            if len(mem) == len(texts):
                return path
    shutil.rmtree(path, ignore_errors=True)
    with Memory(path, cfg, progress=True) as mem:
        mem.add_many(texts, kind="note")
    return path


def levels_of(mem: Memory) -> tuple[dict[int, list[int]], list[int]]:
    """Topic of every record at every level: {level: [topic per record in id order]}, ids."""
    topics = mem.topics()
    leaf_of = {i: t.id for t in topics if t.level == 0 for i in mem.topic(t.id).members}
    ids = sorted(leaf_of)
    return assignments_by_level(topics, np.array([leaf_of[i] for i in ids])), ids


def closest_to_4(per_level: dict[int, list[int]]) -> int:
    """The tree level whose number of topics is closest to 4 (the finer one on a tie)."""
    return min(per_level, key=lambda lvl: (abs(len(set(per_level[lvl])) - 4), lvl))


def assignments_by_level(rows, leaf: np.ndarray) -> dict[int, list[int]]:
    """Topic id of every memory at every level, from topic rows or ``Topic`` objects (``id``, ``parent``)
    and each memory's leaf topic."""
    parent = {r.id: r.parent for r in rows}
    out, cur, lvl = {0: leaf.tolist()}, leaf.tolist(), 0
    while all(parent.get(t) is not None for t in set(cur)):
        cur = [parent[t] for t in cur]
        lvl += 1
        out[lvl] = cur
    return out


def npmi(topics_words: list[list[str]], docs: list[set[str]]) -> float:
    n = len(docs)
    df: Counter[str] = Counter()
    for d in docs:
        df.update(d)
    vocab = {w for ws in topics_words for w in ws}
    pair_df: Counter[tuple[str, str]] = Counter()
    for d in docs:
        present = sorted(vocab & d)
        pair_df.update(combinations(present, 2))
    scores = []
    for ws in topics_words:
        vals = []
        for a, b in combinations(sorted(ws), 2):
            p_ab = pair_df[(a, b)] / n
            if p_ab == 0:
                vals.append(-1.0)
                continue
            p_a, p_b = df[a] / n, df[b] / n
            vals.append(np.log(p_ab / (p_a * p_b)) / -np.log(p_ab))
        if vals:
            scores.append(float(np.mean(vals)))
    return float(np.mean(scores)) if scores else float("nan")


def diversity(topics_words: list[list[str]]) -> float:
    words = [w for ws in topics_words for w in ws]
    return len(set(words)) / max(len(words), 1)


def quality(args) -> None:
    texts, labels = load_ag_news(args.data)
    labels = np.array(labels)
    dual_cfg = MemoryConfig(embedding=EmbeddingConfig(device=args.device))
    general_cfg = MemoryConfig(embedding=EmbeddingConfig(own=None, mode="general", device=args.device))
    print("\n### AG News (7,600 items, 4 classes)\n")
    print("| method | level | topics | ARI | NMI | outliers | NPMI | diversity |\n|---|---|---|---|---|---|---|---|")
    docs = [set(tokenize(t)) for t in texts]
    general_vecs = None
    variants = {}
    for name, cfg in (("dual", dual_cfg), ("general", general_cfg)):
        path = memory_for(f"agnews-{name}", texts, cfg, args)
        with Memory(path, progress=True) as mem:
            if args.variants_only:
                ids_v, vecs = index_vectors(mem._state.live(), mem._state.views)
                variants[name] = (vecs, labels[np.array(ids_v) - 1])
                continue
            t = time.perf_counter()
            mem.rebuild()
            rebuild_s = time.perf_counter() - t
            per_level, ids = levels_of(mem)
            y = labels[np.array(ids) - 1]
            topics = mem.topics()
            near4 = closest_to_4(per_level)
            for lvl, assign in per_level.items():
                words = [list(t.keywords) for t in topics if t.level == lvl]
                mark = " (closest to 4)" if lvl == near4 else ""
                print(f"| selfmem ({name} view; rebuild {rebuild_s:.1f} s) | {lvl}{mark} | {len(set(assign))} | "
                      f"{adjusted_rand_score(y, assign):.3f} | {normalized_mutual_info_score(y, assign):.3f} | 0% | "
                      f"{npmi(words, docs):.3f} | {diversity(words):.3f} |", flush=True)
            ids_v, vecs = index_vectors(mem._state.live(), mem._state.views)
            y_v = labels[np.array(ids_v) - 1]
            if name == "general":
                general_vecs = vecs
        variants[name] = (vecs, y_v)
    if args.variants_only:
        return variant_table(variants, args)
    from sklearn.cluster import HDBSCAN, KMeans

    km = KMeans(4, n_init=10, random_state=0).fit_predict(general_vecs)
    print(f"| KMeans, k = 4 given (MiniLM) | - | 4 | {adjusted_rand_score(labels, km):.3f} | "
          f"{normalized_mutual_info_score(labels, km):.3f} | 0% | | |")
    import umap

    # UMAP + HDBSCAN is sensitive to its seed (HDBSCAN sometimes forms a few giant clusters), so the
    # baseline runs with 5 UMAP seeds
    nmis = []
    for seed in range(5):
        red = umap.UMAP(n_components=5, metric="cosine", n_neighbors=15, random_state=seed).fit_transform(
            general_vecs)
        hd = HDBSCAN(min_cluster_size=15).fit_predict(red)
        nmis.append(normalized_mutual_info_score(labels, hd))
        print(f"| BERTopic-style UMAP(5) + HDBSCAN(15) (MiniLM), UMAP seed {seed} | - | {len(set(hd) - {-1})} | "
              f"{adjusted_rand_score(labels, hd):.3f} | {nmis[-1]:.3f} | {np.mean(hd == -1):.0%} | | |", flush=True)
    print(f"| BERTopic-style, mean over the 5 seeds | - | | | {np.mean(nmis):.3f} | | | |", flush=True)

    variant_table(variants, args)
    locomo_topics(args, dual_cfg)


def variant_table(variants: dict, args) -> None:
    print("\nThe same fit with other settings, on the same vectors (level closest to 4 topics):\n")
    print("| view | setting | fit s | leaf topics | leaf NMI | level sizes | ARI at closest to 4 | NMI at closest to 4 |\n"
          "|---|---|---|---|---|---|---|---|")
    for name, (vecs, y_v) in variants.items():
        settings = [("DP (default, seed 0)", TopicsConfig())] + [
            (f"HDBSCAN, min_cluster_size {m}", TopicsConfig(method="hdbscan", min_cluster_size=m))
            for m in (15, 50, 100)] + [
            (f"DP seed {s}", TopicsConfig(seed=s)) for s in range(1, 5)] + [
            ("DP diagonal covariance (before)", TopicsConfig(covariance="diag"))]
        for label, tcfg in settings:
            if args.only and args.only not in label:
                continue
            state = TopicState(tcfg, Path(args.out))
            t = time.perf_counter()
            rows, tids, _ = state.fit(np.arange(len(vecs)), vecs, [""] * len(vecs), "bench")
            fit_s = time.perf_counter() - t
            per_level = assignments_by_level(rows, tids[:, 0])
            lvl = closest_to_4(per_level)
            sizes = [len(set(a)) for a in per_level.values()]
            print(f"| {name} | {label} | {fit_s:.1f} | {sizes[0]} | {normalized_mutual_info_score(y_v, per_level[0]):.3f} | "
                  f"{sizes[1:]} | {adjusted_rand_score(y_v, per_level[lvl]):.3f} | "
                  f"{normalized_mutual_info_score(y_v, per_level[lvl]):.3f} |", flush=True)



def locomo_topics(args, dual_cfg: MemoryConfig) -> None:
    convs = load_locomo(args.data)
    turns = [t.record_text() for c in convs for t in c.turns]
    path = memory_for("locomo", turns, dual_cfg, args)
    with Memory(path, progress=True) as mem:
        mem.rebuild()
        tdocs = [set(tokenize(t)) for t in turns]
        print("\n### LoCoMo turns (2,760, dual view)\n\n| level | topics | NPMI | diversity |\n|---|---|---|---|")
        topics = mem.topics()
        for lvl in sorted({t.level for t in topics}):
            words = [list(t.keywords) for t in topics if t.level == lvl]
            print(f"| {lvl} | {len(words)} | {npmi(words, tdocs):.3f} | {diversity(words):.3f} |", flush=True)


def synthetic(n: int, dim: int, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Clustered unit vectors (200 clusters) and texts drawn from each cluster's own 20-word vocabulary."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(200, dim)).astype(np.float32)
    lab = rng.integers(0, 200, n)
    x = centers[lab] + rng.normal(scale=0.7, size=(n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    vocab = [[f"w{c}x{j}" for j in range(20)] for c in range(200)]
    texts = [" ".join(rng.choice(vocab[c], size=8)) for c in lab]
    return x, texts


def timing(args) -> None:
    print("\n### Rebuild of topics + tree + labels, and online assignment\n")
    print("| data | N | dim | fit s | topics | online assign ms/memory |\n|---|---|---|---|---|---|")
    cases = []
    real = [Path(args.out) / "topics-agnews-dual", Path(args.out) / "topics-locomo"]
    if not all((p / "memory.duckdb").is_file() for p in real):
        real = [Path(args.out) / "latency-base"]  # the same 10,360 texts, built by benchmarks/retrieval.py
    if all((p / "memory.duckdb").is_file() for p in real):
        vecs, texts = [], []
        for p in real:
            with Memory(p, progress=False) as mem:
                vecs.append(index_vectors(mem._state.live(), mem._state.views)[1])
                texts += mem._state.live().texts()[1]
        cases.append(("real dual vectors (AG News + LoCoMo)", np.vstack(vecs), texts))
    for n in (int(v) for v in args.sizes.split(",") if v):
        x, t = synthetic(n, 640)
        cases.append(("synthetic clustered, synthetic texts", x, t))
    for name, x, texts in cases:
        state = TopicState(TopicsConfig(), Path(args.out))
        t0 = time.perf_counter()
        rows, _, _ = state.fit(np.arange(len(x)), x, texts, "bench")
        fit_s = time.perf_counter() - t0
        probe = x[:2000]
        t0 = time.perf_counter()
        for v in probe:
            state.assign(v[None])
        online_ms = (time.perf_counter() - t0) / len(probe) * 1e3
        print(f"| {name} | {len(x):,} | {x.shape[1]} | {fit_s:.1f} | {sum(r.level == 0 for r in rows)} | "
              f"{online_ms:.3f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--out", default="runs/bench")
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--skip-timing", action="store_true")
    ap.add_argument("--variants-only", action="store_true",
                    help="quality: only the table of fits on the same vectors (DP vs HDBSCAN, seeds), no baselines")
    ap.add_argument("--only", default="", help="run only the variant settings whose name contains this")
    ap.add_argument("--device", default="auto", help="embedding device for the memories (auto, cpu, cuda)")
    args = ap.parse_args()
    print(f"# topics benchmark {date.today()} on {platform.node()} {platform.machine()}")
    if not args.skip_quality:
        quality(args)
    if not args.skip_timing:
        timing(args)


if __name__ == "__main__":
    main()
