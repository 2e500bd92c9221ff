"""Index benchmark: IVF-PQ with exact re-ranking vs exact (IndexFlatIP) vs HNSW, at growing N.

Usage::

    python benchmarks/index.py [--sizes 10000,100000,1000000] [--dims 640,960] [--queries 1000]
                               [--real] [--data ../shared/data] [--hnsw-max 100000] [--opq]

Synthetic data: unit vectors from a mixture of 1,000 clusters of uneven (Pareto) size, each
locally 16-dimensional (see :func:`mixture`); queries come from the same mixture, never from the data. ``--real`` adds a run on real dual embeddings
(MiniLM + whitened SmolLM2, the memory's default 640-dim vectors) of AG News + LoCoMo turns,
queried with the LoCoMo questions. Ground truth is exact inner-product search.

Reported per method: recall@10 against exact, single-query latency p50/p99 (one query per call),
per-query latency in batches of 100, queries/s (batched), index RAM and disk bytes per vector,
train and add time. RAM for IVF-PQ counts codes + ids + centroids; the float16 re-rank vectors live
in a memory-mapped file and are counted as disk.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from datetime import date
from pathlib import Path

import faiss
import numpy as np
from _data import DEFAULT_DATA
from tqdm import tqdm

from selfmem.retrieval._ivfpq import IVFPQIndex, ivfpq_params


def mixture(n: int, dim: int, seed: int, model: dict[str, np.ndarray]) -> np.ndarray:
    """n unit vectors from the cluster mixture, generated in chunks (float32).

    Each point is its cluster's centre, plus a move inside the cluster's own random 16-dim
    subspace (norm ~0.5), plus small isotropic noise (norm ~0.1): locally low-dimensional,
    as real embeddings are.
    """
    rng = np.random.default_rng(seed)
    centers, bases, weights = model["centers"], model["bases"], model["weights"]
    out = np.empty((n, dim), dtype=np.float32)
    for s in range(0, n, 50_000):
        m = min(50_000, n - s)
        c = rng.choice(len(centers), size=m, p=weights)
        z = rng.normal(scale=0.5 / 4.0, size=(m, 1, bases.shape[1])).astype(np.float32)
        x = centers[c] + (z @ bases[c])[:, 0, :] + rng.normal(scale=0.1 / np.sqrt(dim), size=(m, dim)).astype(
            np.float32)
        out[s:s + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def synthetic(n: int, dim: int, n_queries: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(dim)
    centers = rng.normal(size=(1000, dim)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    bases = rng.normal(size=(1000, 16, dim)).astype(np.float32)
    bases /= np.linalg.norm(bases, axis=2, keepdims=True)
    weights = rng.pareto(1.5, size=1000) + 1.0
    model = {"centers": centers, "bases": bases, "weights": weights / weights.sum()}
    return mixture(n, dim, 1, model), mixture(n_queries, dim, 2, model)


def real_vectors(data: str, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """Default dual vectors (640 dims) of AG News + LoCoMo turns, and of the LoCoMo questions."""
    if cache.is_file():
        z = np.load(cache, allow_pickle=False)
        return z["x"], z["q"]
    from _data import load_ag_news, load_locomo

    from selfmem._config import EmbeddingConfig
    from selfmem.retrieval._models import make_embedder, make_own_embedder
    from selfmem.retrieval._views import Views

    cfg = EmbeddingConfig()
    views = Views(make_embedder(cfg.general, cfg), make_own_embedder(cfg.own, cfg), mode="dual", alpha=cfg.alpha,
                  own_dim=cfg.own_dim, shrinkage=cfg.own_shrinkage, min_fit=cfg.own_min_fit)
    convs = load_locomo(data)
    texts = load_ag_news(data)[0] + [t.record_text() for c in convs for t in c.turns]
    questions = [q.question for c in convs for q in c.questions]
    raw = views.embed_raw(texts, progress=True)
    views.fit_whitener(raw["own"], Path(tempfile.mkdtemp()))
    x = views.index_vectors(raw)
    q = views.index_vectors(views.embed_raw(questions, progress=True))
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, x=x, q=q)
    return x, q


def timed_single(search, queries: np.ndarray) -> tuple[float, float]:
    lat = []
    for q in queries:
        t = time.perf_counter()
        search(q[None, :])
        lat.append(time.perf_counter() - t)
    return float(np.percentile(lat, 50) * 1e3), float(np.percentile(lat, 99) * 1e3)


def timed_batches(search, queries: np.ndarray, size: int = 100) -> tuple[float, float, np.ndarray]:
    """Per-query ms in batches, queries/s, and the ids found (q, 10)."""
    found = []
    t = time.perf_counter()
    for s in range(0, len(queries), size):
        found.append(search(queries[s:s + size]))
    dt = time.perf_counter() - t
    return dt / len(queries) * 1e3, len(queries) / dt, np.vstack(found)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / truth.shape[1] for a, b in zip(found, truth)]))


def disk_bytes(index, directory: str) -> int:
    path = os.path.join(directory, "probe.faiss")
    faiss.write_index(index, path)
    size = os.path.getsize(path)
    os.remove(path)
    return size


def run(name: str, x: np.ndarray, q: np.ndarray, args, rows: list) -> None:
    n, dim = x.shape
    ids = np.arange(n, dtype=np.int64)
    n_single = min(args.single, len(q))
    print(f"\n## {name}: N={n:,} dim={dim} queries={len(q)}", flush=True)

    t = time.perf_counter()
    flat = faiss.IndexFlatIP(dim)
    flat.add(x)
    t_flat = time.perf_counter() - t
    exact = flat.search
    per_b, qps_b, truth = timed_batches(lambda b: exact(b, 10)[1], q)
    p50, p99 = timed_single(lambda v: exact(v, 10), q[:n_single])
    rows.append((name, n, "IndexFlatIP (exact)", 1.0, p50, p99, per_b, qps_b, 4 * dim, 4 * dim, 0.0, t_flat))
    print(rows[-1], flush=True)
    del flat

    if n <= args.hnsw_max:
        t = time.perf_counter()
        hnsw = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = 40
        hnsw.add(x)
        t_h = time.perf_counter() - t
        hnsw.hnsw.efSearch = 128
        per_b, qps_h, found = timed_batches(lambda b: hnsw.search(b, 10)[1], q)
        p50, p99 = timed_single(lambda v: hnsw.search(v, 10), q[:n_single])
        d = tempfile.mkdtemp()
        disk = disk_bytes(hnsw, d) / n
        rows.append((name, n, "IndexHNSWFlat (M=32, efC=40, efS=128)", recall(found, truth), p50, p99, per_b, qps_h,
                     disk, disk, 0.0, t_h))
        print(rows[-1], flush=True)
        del hnsw

    for opq in ([False, True] if args.opq else [False]):
        d = tempfile.mkdtemp()
        p = ivfpq_params(n, dim)
        t = time.perf_counter()
        rng = np.random.default_rng(0)
        sample = x[np.sort(rng.choice(n, size=p["train_size"], replace=False))]
        ivf = IVFPQIndex.train(dim, Path(d), sample, n, opq=opq, params=p)
        t_train = time.perf_counter() - t
        t = time.perf_counter()
        for s in tqdm(range(0, n, 65536), desc="ivfpq add", leave=False):
            ivf.add(ids[s:s + 65536], x[s:s + 65536])
        t_add = time.perf_counter() - t
        for nprobe in sorted({p["nprobe"], *args.nprobes}):
            def search(b, nprobe=nprobe, ivf=ivf):
                return ivf.search(b, 10, nprobe=nprobe)[1]

            per_b, qps_i, found = timed_batches(search, q)
            p50, p99 = timed_single(search, q[:n_single])
            ram = ivf.memory_bytes() / n
            disk = (disk_bytes(ivf._index, d) + os.path.getsize(Path(d) / "rerank.f16")
                    + os.path.getsize(Path(d) / "rerank.ids")) / n
            label = (f"IVF-PQ{' +OPQ' if opq else ''} nlist={p['nlist']} M={p['m']} nprobe={nprobe} "
                     f"rerank=k*{p['rerank']}" + (" (default)" if nprobe == p["nprobe"] else ""))
            rows.append((name, n, label, recall(found, truth), p50, p99, per_b, qps_i, ram, disk, t_train, t_add))
            print(rows[-1], flush=True)
        del ivf


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--dims", default="640,960")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--single", type=int, default=300, help="queries timed one at a time")
    ap.add_argument("--nprobes", default="", help="extra nprobe values to try, comma separated")
    ap.add_argument("--hnsw-max", type=int, default=100_000, help="largest N to build HNSW for")
    ap.add_argument("--opq", action="store_true", help="also try OPQ")
    ap.add_argument("--real", action="store_true", help="also run on real dual embeddings (10k)")
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--out", default="runs/bench")
    args = ap.parse_args()
    args.nprobes = [int(v) for v in args.nprobes.split(",") if v]
    print(f"# index benchmark {date.today()} on {platform.node()} {platform.machine()}, "
          f"{os.cpu_count()} cores, faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads")
    rows: list = []
    if args.real:
        x, q = real_vectors(args.data, Path(args.out) / "real_dual.npz")
        run("real dual embeddings (AG News + LoCoMo turns; LoCoMo questions)", x, q, args, rows)
    for dim in (int(v) for v in args.dims.split(",")):
        for n in (int(v) for v in args.sizes.split(",")):
            x, q = synthetic(n, dim, args.queries)
            run(f"synthetic clustered d={dim}", x, q, args, rows)
            del x
    print("\n| data | N | method | recall@10 | p50 ms (1 query) | p99 ms | ms/query (batch 100) | QPS (batch) "
          "| RAM B/vec | disk B/vec | train s | add s |\n|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]:,} | {r[2]} | {r[3]:.3f} | {r[4]:.3f} | {r[5]:.3f} | {r[6]:.3f} | {r[7]:,.0f} | "
              f"{r[8]:.0f} | {r[9]:.0f} | {r[10]:.1f} | {r[11]:.1f} |")


if __name__ == "__main__":
    main()
